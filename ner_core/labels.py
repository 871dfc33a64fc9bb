"""Tag schemes: checking tags, IOB1 -> IOB2, label sets, and tags -> entity spans.

Tags are plain strings (``O``, ``B-PER``, ``I-PER``); sentences are ``list[str]``.
"""

from __future__ import annotations

import math
import re

from seqeval.metrics.sequence_labeling import get_entities

from .errors import UserError

# The label order of the Hugging Face ``conll2003`` dataset: models trained on the Hub version and
# ours agree on ids.
CONLL2003_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]

_TINY = 1e-12  # log(0) is no score: a probability rounded to nothing counts as this
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


# Tag schemes a file may use; each is read into IOB2. BIOES ends an entity with E- and tags a
# one-word entity S-; BILOU says the same with L- and U-.
SCHEMES = ("IOB1", "IOB2", "BIOES", "BILOU")
_ANY_TAG = re.compile(r"^(?:O|[BIESLU]-\S+)$")
_LAST = {"BIOES": "E", "BILOU": "L"}  # the prefix that ends an entity


def is_scheme_tag(tag: str) -> bool:
    """True for a tag of any scheme read: ``O``, ``B-``/``I-``, and ``S-``/``E-``/``U-``/``L-``.

    >>> [is_scheme_tag(t) for t in ["O", "S-PER", "L-LOC", "X-PER", "PER", "E-"]]
    [True, True, True, False, False, False]
    """
    return bool(_ANY_TAG.match(tag))


def scheme_tag_problem(tag: str) -> str:
    """Why ``tag`` is no tag of any scheme read, as the end of an error message."""
    return (f"{tag_problem(tag)}; BIOES tags (S-TYPE, E-TYPE) and BILOU tags (U-TYPE, L-TYPE) "
            "are read too")


def tag_scheme(sentences: list[list[str]]) -> str:
    """The scheme of tagged sentences (tags checked by ``is_scheme_tag``): BIOES or BILOU when an
    ``S-``/``E-`` or ``U-``/``L-`` tag is there, IOB1 when an ``I-`` begins an entity, else IOB2.

    >>> tag_scheme([["B-PER", "E-PER"]]), tag_scheme([["U-PER"]]), tag_scheme([["I-PER", "O"]])
    ('BIOES', 'BILOU', 'IOB1')
    >>> tag_scheme([["B-PER", "I-PER"], ["O"]])
    'IOB2'
    """
    prefixes = {tag[0] for tags in sentences for tag in tags}
    if prefixes & {"S", "E"}:
        return "BIOES"  # a file mixing E- and L- reads the same: L- is E-, U- is S-
    if prefixes & {"U", "L"}:
        return "BILOU"
    return "IOB1" if any(starts_entity_iob1(tags) for tags in sentences) else "IOB2"


def sequence_problem(tags: list[str], scheme: str) -> tuple[int, str] | None:
    """Where a BIOES or BILOU sentence breaks its scheme and what was expected there; ``None``
    when it does not (IOB1 and IOB2 sentences always read).

    >>> sequence_problem(["B-PER", "O"], "BIOES")
    (1, "expected I-PER or E-PER after B-PER (BIOES), found 'O'")
    >>> sequence_problem(["O", "I-LOC", "E-LOC"], "BIOES")
    (1, "expected B-LOC to begin the entity (BIOES), found 'I-LOC' after O")
    >>> sequence_problem(["B-PER", "L-PER", "U-LOC"], "BILOU") is None
    True
    """
    if scheme not in _LAST:
        return None
    last = _LAST[scheme]
    previous = "O"
    for index, tag in enumerate(tags):
        prefix, kind = tag[0], tag[2:]
        if previous[0] in "BI":  # inside an entity: it goes on or ends, with its type
            if prefix not in ("I", "E", "L") or kind != previous[2:]:
                return index, (f"expected I-{previous[2:]} or {last}-{previous[2:]} after "
                               f"{previous} ({scheme}), found {tag!r}")
        elif prefix in ("I", "E", "L"):
            after = f"after {previous}" if index else "at the start of the sentence"
            return index, (f"expected B-{kind} to begin the entity ({scheme}), found {tag!r} "
                           f"{after}")
        previous = tag
    if previous[0] in "BI":
        return len(tags) - 1, (f"expected {last}-{previous[2:]} to end the entity ({scheme}), "
                               f"found the end of the sentence after {previous}")
    return None


def to_iob2(tags: list[str], scheme: str) -> list[str]:
    """Tags of ``scheme`` (sequences already checked) rewritten as IOB2.

    >>> to_iob2(["S-PER", "B-LOC", "I-LOC", "E-LOC"], "BIOES")
    ['B-PER', 'B-LOC', 'I-LOC', 'I-LOC']
    >>> to_iob2(["U-PER", "B-LOC", "L-LOC"], "BILOU"), to_iob2(["I-PER", "O"], "IOB1")
    (['B-PER', 'B-LOC', 'I-LOC'], ['B-PER', 'O'])
    """
    if scheme == "IOB1":
        return iob1_to_iob2(tags)
    if scheme in _LAST:
        prefixes = {"S": "B-", "U": "B-", "E": "I-", "L": "I-", "B": "B-", "I": "I-"}
        return [tag if tag == "O" else prefixes[tag[0]] + tag[2:] for tag in tags]
    return list(tags)


def iob2_to_bioes(tags: list[str]) -> list[str]:
    """IOB2 tags as BIOES: the last word of an entity ``E-``, a one-word entity ``S-``.

    >>> iob2_to_bioes(["B-PER", "I-PER", "I-PER", "O", "B-LOC", "B-LOC"])
    ['B-PER', 'I-PER', 'E-PER', 'O', 'S-LOC', 'S-LOC']
    """
    out = []
    for index, tag in enumerate(tags):
        following = tags[index + 1] if index + 1 < len(tags) else "O"
        goes_on = following == f"I-{tag[2:]}"
        if tag.startswith("B-"):
            tag = tag if goes_on else "S-" + tag[2:]
        elif tag.startswith("I-"):
            tag = tag if goes_on else "E-" + tag[2:]
        out.append(tag)
    return out


def iob2_to_iob1(tags: list[str]) -> list[str]:
    """IOB2 tags as IOB1: ``B-`` only where an entity follows one of its own type.

    >>> iob2_to_iob1(["B-PER", "I-PER", "B-PER", "O", "B-LOC"])
    ['I-PER', 'I-PER', 'B-PER', 'O', 'I-LOC']
    """
    out, previous = [], "O"
    for tag in tags:
        if tag.startswith("B-") and entity_type(previous) != tag[2:]:
            out.append("I-" + tag[2:])
        else:
            out.append(tag)
        previous = tag
    return out


def iob2_labels(names: list[str]) -> list[str]:
    """The IOB2 label names of a dataset's tag names (any scheme), keeping the ids of those that
    are IOB2 already: ``S-``/``E-``/``U-``/``L-`` names left out, missing ``O``, ``B-`` and ``I-``
    names added after the others.

    >>> iob2_labels(["O", "B-PER", "I-PER", "E-PER", "S-PER", "S-LOC"])
    ['O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC']
    >>> iob2_labels(CONLL2003_LABELS) == CONLL2003_LABELS
    True
    """
    kept = [name for name in names if is_valid_tag(name)]
    types = dict.fromkeys(name[2:] for name in names if name != "O")
    wanted = ["O"] + [f"{prefix}-{kind}" for kind in types for prefix in ("B", "I")]
    return kept + [name for name in wanted if name not in kept]


def transitions(labels: list[str]) -> list[list[bool]]:
    """``allowed[previous][label]``: IOB2 lets ``I-TYPE`` follow only ``B-TYPE`` or ``I-TYPE``;
    a label outside IOB2 follows and precedes anything. The row at ``len(labels)`` is the
    sentence's start, where no ``I-`` may stand.

    >>> allowed = transitions(["O", "B-X", "I-X"])
    >>> ["".join("OBI"[j] if ok else "." for j, ok in enumerate(row)) for row in allowed]
    ['OB.', 'OBI', 'OBI', 'OB.']
    >>> all(all(row) for row in transitions(["O", "S-X", "E-X"]))  # BIOES: not constrained here
    True
    """
    inside = [label[2:] if label.startswith("I-") and is_valid_tag(label) else None
              for label in labels]
    rows = [[kind is None or (previous[2:] == kind and is_valid_tag(previous))
             for kind in inside] for previous in labels]
    return rows + [[kind is None for kind in inside]]


def decode(words: list[list[float] | None], allowed: list[list[bool]]) -> list[int | None]:
    """Label ids for one sentence from each word's probability of every label: the most probable
    sequence ``allowed`` permits. That is each word's most probable label wherever those already
    make an allowed sequence (nearly always), else ``best_sequence`` of their logarithms. A word
    without probabilities (``None``: no window read it) gets ``None`` and is left out.

    >>> decode([[0.6, 0.3, 0.1], None, [0.2, 0.2, 0.6]], transitions(["O", "B-X", "I-X"]))
    [1, None, 2]
    """
    kept = [w for w, p in enumerate(words) if p is not None]
    ids: list[int | None] = [None] * len(words)
    for w, label in zip(kept, _decode([words[w] for w in kept], allowed)):
        ids[w] = label
    return ids


def _decode(probabilities: list[list[float]], allowed: list[list[bool]]) -> list[int]:
    best = [max(range(len(p)), key=p.__getitem__) for p in probabilities]
    previous = len(allowed) - 1  # the sentence's start
    for label in best:
        if not allowed[previous][label]:
            return best_sequence([[math.log(max(p, _TINY)) for p in word] for word in probabilities],
                                 allowed)
        previous = label
    return best


def best_sequence(scores: list[list[float]], allowed: list[list[bool]]) -> list[int]:
    """The label ids of highest total score that ``allowed`` (from ``transitions``) permits, for
    one sentence of per-word log-probabilities (Viterbi). Where argmax already gives an allowed
    sequence, that sequence comes back.

    >>> allowed = transitions(["O", "B-X", "I-X"])
    >>> import math; log = lambda row: [math.log(p) for p in row]
    >>> best_sequence([log([0.6, 0.3, 0.1]), log([0.2, 0.2, 0.6])], allowed)  # O I-X is not IOB2
    [1, 2]
    >>> best_sequence([log([0.9, 0.05, 0.05]), log([0.3, 0.1, 0.6])], allowed)
    [0, 0]
    >>> best_sequence([], allowed)
    []
    """
    if not scores:
        return []
    start = allowed[-1]
    total = [s if start[j] else float("-inf") for j, s in enumerate(scores[0])]
    back: list[list[int]] = []
    n = len(total)
    for word in scores[1:]:
        pointers, next_total = [], []
        for j in range(n):
            best_i, best = -1, float("-inf")
            for i in range(n):
                if allowed[i][j] and total[i] > best:
                    best_i, best = i, total[i]
            pointers.append(best_i)
            next_total.append(best + word[j])
        back.append(pointers)
        total = next_total
    label = max(range(n), key=total.__getitem__)
    path = [label]
    for pointers in reversed(back):
        label = pointers[label]
        path.append(label)
    return path[::-1]
