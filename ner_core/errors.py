"""The one error type that means "the user's input is wrong".

``UserError`` is raised for bad input (a setting, a file, a name) and carries a message that says
what was expected, what was found and where. The app shows its message and the command line
prints it and exits with code 2. Anything else, a ``UserError`` from a library included, is a
fault of the studio: it is logged with its traceback.

>>> issubclass(UserError, ValueError)
True
"""


class UserError(ValueError):
    """Bad input, in one sentence that says what was expected, what was found and where."""
