"""Words -> model inputs: sub-tokens, label alignment, windows and document context.

Training, evaluation and inference all build their inputs here, so a model sees at inference
exactly the kind of window it was trained on. A *window* is what one forward pass reads:
``[CLS] left context | own words | right context [SEP]``. Every word is *owned* by exactly one
window, which labels it (training) or predicts it (inference); context words are read but never
labelled. Context comes from the rest of a long sentence (the overlap between its windows) and, with
document context, from the neighbouring sentences of the same document or paragraph.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import UserError

IGNORE = -100  # the label id the loss skips


@dataclass
class Window:
    input_ids: list[int]
    # (sentence, word, token position) for the first sub-token of every owned word
    owned: list[tuple[int, int, int]] = field(default_factory=list)
    labels: list[int] | None = None
    # with the case feature: 1 on every sub-token of a word with a capital letter, else 0
    token_type_ids: list[int] | None = None
    # how many sub-tokens each owned word has in the window, in the order of ``owned``
    widths: list[int] = field(default_factory=list)


def word_pieces(tokenizer, sentences: list[list[str]]) -> list[list[list[int]]]:
    """Sub-token ids for every word of every sentence (an empty list for a word with none).

    Works for any fast tokenizer; words are tokenized as in ``is_split_into_words``.
    """
    if not sentences:
        return []
    encoding = tokenizer(sentences, is_split_into_words=True, add_special_tokens=False)
    pieces = []
    for i, sentence in enumerate(sentences):
        words: list[list[int]] = [[] for _ in sentence]
        for token_id, word in zip(encoding["input_ids"][i], encoding.word_ids(i)):
            if word is not None:
                words[word].append(token_id)
        pieces.append(words)
    return pieces


def case_flags(sentences: list[list[str]]) -> list[list[int]]:
    """1 for each word with a capital letter, else 0: what a lowercasing tokenizer throws away.

    >>> case_flags([["Angela", "visited", "PARIS", "iPhone", "3"]])
    [[1, 0, 1, 1, 0]]
    """
    return [[int(any(c.isupper() for c in word)) for word in sentence] for sentence in sentences]


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The ids that open and close a window: ``[CLS]``/``[SEP]`` for BERT, ``<s>``/``</s>`` else."""
    first = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    last = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    return ([first] if first is not None else []), ([last] if last is not None else [])


def context_groups(doc_ids: list[int], document_context: bool) -> list[list[int]]:
    """Sentence indices that may lend each other context: consecutive sentences of one document.

    >>> context_groups([0, 0, 1, 1, 1], True), context_groups([0, 0], False)
    ([[0, 1], [2, 3, 4]], [[0], [1]])
    """
    if not document_context:
        return [[i] for i in range(len(doc_ids))]
    groups: list[list[int]] = []
    for i, doc in enumerate(doc_ids):
        if groups and doc_ids[groups[-1][-1]] == doc:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def build_windows(
    pieces: list[list[list[int]]],
    groups: list[list[int]],
    max_length: int,
    specials: tuple[list[int], list[int]],
    context_tokens: int,
    labels: list[list[int]] | None = None,
    label_all_tokens: bool = False,
    b_to_i: dict[int, int] | None = None,
    flags: list[list[int]] | None = None,
) -> list[Window]:
    """Windows over ``pieces`` (from ``word_pieces``) of at most ``max_length`` tokens.

    Each sentence is owned by one window, or by several consecutive ones when it does not fit; a
    window takes up to ``context_tokens`` tokens of context on each side from its group. With
    ``labels`` (label ids per word), owned words are labelled on their first sub-token, or on all
    of them with ``label_all_tokens`` (``b_to_i`` then maps a ``B-`` id to its ``I-`` id). With
    ``flags`` (one per word, from ``case_flags``), windows carry them as ``token_type_ids``.
    """
    if label_all_tokens and labels is not None and b_to_i is None:
        raise UserError("label_all_tokens needs b_to_i (the label names) to turn B- into I-")
    first, last = specials
    budget = max_length - len(first) - len(last)
    if budget < 1:
        raise UserError(f"max_length must leave room for a token, found {max_length}")
    windows = []
    for group in groups:
        flat = [(s, w, p[:budget], flags[s][w] if flags else 0)
                for s in group for w, p in enumerate(pieces[s]) if p]
        start = 0
        for s in group:
            n_words = sum(1 for p in pieces[s] if p)
            owned = _split_owned(flat, start, start + n_words, budget, context_tokens)
            for a, b in owned:
                left, right = _context(flat, a, b, budget, context_tokens)
                window = _window(flat, left, a, b, right, first, last, labels,
                                 label_all_tokens, b_to_i)
                if flags is not None:
                    window.token_type_ids = _types(flat, left, right, first, last)
                windows.append(window)
            start += n_words
    return windows


def _split_owned(flat, start: int, end: int, budget: int, context_tokens: int) -> list[tuple[int, int]]:
    """Consecutive word ranges of one sentence, each short enough to own one window."""
    total = sum(len(p) for _, _, p, _ in flat[start:end])
    if total <= budget:
        return [(start, end)] if end > start else []
    # A long sentence: leave room for overlap on both sides, so no word is read without context.
    room = max(1, budget - 2 * min(context_tokens, budget // 4))
    ranges, a, used = [], start, 0
    for i in range(start, end):
        size = len(flat[i][2])
        if i > a and used + size > room:
            ranges.append((a, i))
            a, used = i, 0
        used += size
    ranges.append((a, end))
    return ranges


def _context(flat, a: int, b: int, budget: int, context_tokens: int) -> tuple[int, int]:
    """Extend the owned range ``[a, b)`` word by word, alternating sides, within the budget."""
    room = budget - sum(len(p) for _, _, p, _ in flat[a:b])
    limits = {"left": min(room, context_tokens), "right": min(room, context_tokens)}
    left, right = a, b
    used = {"left": 0, "right": 0}
    grew = True
    while grew:
        grew = False
        if left > 0 and used["left"] + len(flat[left - 1][2]) <= limits["left"] \
                and len(flat[left - 1][2]) <= room:
            left -= 1
            used["left"] += len(flat[left][2])
            room -= len(flat[left][2])
            grew = True
        if right < len(flat) and used["right"] + len(flat[right][2]) <= limits["right"] \
                and len(flat[right][2]) <= room:
            used["right"] += len(flat[right][2])
            room -= len(flat[right][2])
            right += 1
            grew = True
    return left, right


def _window(flat, left, a, b, right, first, last, labels, label_all_tokens, b_to_i) -> Window:
    input_ids = list(first)
    window_labels = [IGNORE] * len(first) if labels is not None else None
    owned, widths = [], []
    for i in range(left, right):
        s, w, p, _ = flat[i]
        if a <= i < b:
            owned.append((s, w, len(input_ids)))
            widths.append(len(p))
        input_ids.extend(p)
        if window_labels is not None:
            if a <= i < b:
                label = labels[s][w]
                rest = b_to_i.get(label, label) if label_all_tokens else IGNORE
                window_labels.extend([label] + [rest] * (len(p) - 1))
            else:
                window_labels.extend([IGNORE] * len(p))
    input_ids.extend(last)
    if window_labels is not None:
        window_labels.extend([IGNORE] * len(last))
    return Window(input_ids, owned, window_labels, widths=widths)


def _types(flat, left: int, right: int, first: list[int], last: list[int]) -> list[int]:
    """Token type ids of a window: each word's flag on all its sub-tokens, 0 on the specials."""
    types = [0] * len(first)
    for _, _, p, flag in flat[left:right]:
        types.extend([flag] * len(p))
    return types + [0] * len(last)


def b_to_i_ids(labels: list[str]) -> dict[int, int]:
    """Map each ``B-X`` id to the ``I-X`` id, for labelling the later sub-tokens of a word.

    >>> b_to_i_ids(["O", "B-PER", "I-PER"])
    {1: 2}
    """
    index = {label: i for i, label in enumerate(labels)}
    return {i: index.get("I-" + label[2:], i) for i, label in enumerate(labels) if label.startswith("B-")}


def windows_for_sentences(
    tokenizer,
    sentences: list[list[str]],
    doc_ids: list[int],
    max_length: int,
    document_context: bool,
    context_tokens: int,
    labels: list[list[int]] | None = None,
    label_names: list[str] | None = None,
    label_all_tokens: bool = False,
    case_feature: bool = False,
) -> list[Window]:
    """``build_windows`` from words: the one entry point training, evaluation and inference share."""
    return build_windows(
        word_pieces(tokenizer, sentences),
        context_groups(doc_ids, document_context),
        max_length,
        special_tokens(tokenizer),
        context_tokens,
        labels=labels,
        label_all_tokens=label_all_tokens,
        b_to_i=b_to_i_ids(label_names) if label_names else None,
        flags=case_flags(sentences) if case_feature else None,
    )
