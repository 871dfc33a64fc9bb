"""Tag schemes: checking tags, IOB1 -> IOB2, label sets, and tags -> entity spans.

Tags are plain strings (``O``, ``B-PER``, ``I-PER``); sentences are ``list[str]``.
"""

from __future__ import annotations

import re

from seqeval.metrics.sequence_labeling import get_entities

from .errors import UserError

# The label order of the Hugging Face ``conll2003`` dataset: models trained on the Hub version and
# ours agree on ids.
CONLL2003_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]

_TAG = re.compile(r"^(?:O|[BI]-\S+)$")


def is_valid_tag(tag: str) -> bool:
    """True for ``O``, ``B-TYPE`` and ``I-TYPE``.

    >>> [is_valid_tag(t) for t in ["O", "B-PER", "I-MISC", "0", "B-", "PER"]]
    [True, True, True, False, False, False]
    """
    return bool(_TAG.match(tag))


def tag_problem(tag: str) -> str:
    """Why ``tag`` is not a valid tag, as the end of an error message."""
    hint = " (the digit zero; the outside tag is the letter O)" if tag == "0" else ""
    return f"expected a tag 'O', 'B-TYPE' or 'I-TYPE', found {tag!r}{hint}"


def entity_type(tag: str) -> str | None:
    """The entity type of a tag, ``None`` for ``O``.

    >>> entity_type("B-LOC"), entity_type("O")
    ('LOC', None)
    """
    return None if tag == "O" else tag[2:]


def starts_entity_iob1(tags: list[str]) -> bool:
    """True when some ``I-`` tag begins an entity, which only IOB1 does.

    >>> starts_entity_iob1(["I-PER", "I-PER", "O"]), starts_entity_iob1(["B-PER", "I-PER"])
    (True, False)
    """
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and entity_type(previous) != tag[2:]:
            return True
        previous = tag
    return False


def iob1_to_iob2(tags: list[str]) -> list[str]:
    """Rewrite IOB1 tags as IOB2: an ``I-`` that begins an entity becomes ``B-``.

    IOB2 input comes back unchanged.

    >>> iob1_to_iob2(["I-PER", "I-PER", "B-PER", "O", "I-LOC"])
    ['B-PER', 'I-PER', 'B-PER', 'O', 'B-LOC']
    """
    out = []
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and entity_type(previous) != tag[2:]:
            tag = "B-" + tag[2:]
        out.append(tag)
        previous = tag
    return out


def label_list(tags: set[str]) -> list[str]:
    """The label names for a set of tags seen in data.

    A subset of CoNLL-2003's tags gets the Hub's order; anything else gets ``O`` then ``B-``/``I-``
    for each type in alphabetical order, both prefixes always present.

    >>> label_list({"O", "B-PER", "I-ORG"}) == CONLL2003_LABELS
    True
    >>> label_list({"O", "B-DRUG"})
    ['O', 'B-DRUG', 'I-DRUG']
    """
    if tags <= set(CONLL2003_LABELS):
        return list(CONLL2003_LABELS)
    types = sorted({entity_type(t) for t in tags if t != "O"})
    return ["O"] + [f"{prefix}-{t}" for t in types for prefix in ("B", "I")]


def extend_labels(model_labels: list[str], data_labels: list[str]) -> list[str]:
    """A trained model's labels followed by those of ``data_labels`` it lacks (``B-`` then ``I-``
    for each new entity type, in the data's order), so every old label keeps its id.

    Both must be IOB2 label sets (``O``, ``B-TYPE``, ``I-TYPE``): tags of another scheme (BIOES
    ``S-PER``, ``E-PER``) mean other things and are refused in one sentence naming both sets.

    >>> extend_labels(["O", "B-PER", "I-PER"], ["O", "B-PRODUCT", "I-PRODUCT", "B-PER", "I-PER"])
    ['O', 'B-PER', 'I-PER', 'B-PRODUCT', 'I-PRODUCT']
    >>> extend_labels(["O", "B-PER", "I-PER"], ["O", "S-PER", "E-PER"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ner_core.errors.UserError: expected the data's labels (O, S-PER, E-PER) and the model's (O, B-PER, I-PER) ...
    """
    foreign = [label for label in dict.fromkeys([*data_labels, *model_labels])
               if not is_valid_tag(label)]
    if foreign or "O" not in model_labels:
        raise UserError(f"expected the data's labels ({', '.join(data_labels)}) and the model's "
                        f"({', '.join(model_labels)}) to be IOB2 labels (O, B-TYPE, I-TYPE) so "
                        "that the data's can extend the model's, found "
                        f"{', '.join(foreign) or 'no O among the model labels'}")
    known = set(model_labels)
    added = [f"{prefix}-{kind}" for kind in entity_types(data_labels) for prefix in ("B", "I")]
    return list(model_labels) + [label for label in added if label not in known]


def entity_types(labels: list[str]) -> list[str]:
    """Entity types in the order they first appear in ``labels``.

    >>> entity_types(CONLL2003_LABELS)
    ['PER', 'ORG', 'LOC', 'MISC']
    """
    return list(dict.fromkeys(entity_type(t) for t in labels if t != "O"))


def spans(tags: list[str]) -> list[tuple[str, int, int]]:
    """Entity spans ``(type, first word, last word + 1)`` as conlleval reads the tags.

    An ``I-`` after ``O`` or after another type starts an entity, as in seqeval's default mode.

    >>> spans(["B-PER", "I-PER", "O", "I-LOC", "B-LOC"])
    [('PER', 0, 2), ('LOC', 3, 4), ('LOC', 4, 5)]
    """
    return [(label, start, end + 1) for label, start, end in get_entities(tags)]
