"""Texts contained in other texts, and splits that keep them apart.

Phrase-level data sets hold pieces of their own texts: SST-2's train file is every phrase of its parse trees, so
"the movie was great" is there beside "great". A split by the text alone puts a phrase in test and the sentence it
came from in train (86.5% of SST-2's test texts occur verbatim inside a train text): the model has seen the test
text with its label, and the test figures flatter it. Preprocess measures that leak and, with
`data.split.by: containment` (the default), splits so that it cannot happen: a text contained in a train text is in
train, a text contained only in val or test texts follows them, and a text in no other (a root: a source sentence)
is split by its hash as before.

Containment is on word boundaries of a normal form (case folded, punctuation apart, each CJK character a word),
found for all pairs at once with an Aho-Corasick automaton (pyahocorasick) over the texts up to
MAX_PATTERN_CHARS; longer texts are only searched in, never searched for (their memory, and a verbatim long text
inside another is rare).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

MAX_PATTERN_CHARS = 1000
SPLIT_BITS = {"train": 1, "val": 2, "test": 4}
# Scripts written without spaces: each character is a word (as BERT's tokenizers treat CJK ideographs).
_WORDS = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0e00-\u0e7f]|\w+|[^\w\s]")


def normal_form(text: str) -> str:
    """TEXT as ` word word ... ` (case folded, punctuation and CJK characters as words, single spaces, a space at
    each end), so that containment is a plain substring test that respects word boundaries."""
    return " " + " ".join(_WORDS.findall(text.casefold())) + " "


def split_by_containment(texts: Sequence[str], own_split: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the split of each of TEXTS by containment, and the splits of the texts each is contained in as bit masks
    (SPLIT_BITS) twice: under that split, and under OWN_SPLIT, the split each text would have alone (by its hash),
    which is also what a root keeps). Texts with the same normal form share the first one's split."""
    import ahocorasick

    keys = [normal_form(t) for t in texts]
    unique: dict[str, int] = {}
    key_of = np.array([unique.setdefault(k, len(unique)) for k in keys], dtype=np.int64)
    names = list(unique)
    first: np.ndarray = np.full(len(names), -1, dtype=np.int64)
    for i in range(len(texts) - 1, -1, -1):
        first[key_of[i]] = i
    automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
    for k, name in enumerate(names):
        if len(name) <= MAX_PATTERN_CHARS:
            automaton.add_word(name, k)
    if len(automaton) == 0:
        none: np.ndarray = np.zeros(len(texts), dtype=np.int64)
        return np.asarray(own_split, dtype=object), none, none
    automaton.make_automaton()

    given = np.array([SPLIT_BITS[own_split[i]] for i in first], dtype=np.int64)
    mask_given: np.ndarray = np.zeros(len(names), dtype=np.int64)  # containers' splits as OWN_SPLIT places them
    mask: np.ndarray = np.zeros(len(names), dtype=np.int64)  # containers' splits as containment places them
    split: np.ndarray = np.zeros(len(names), dtype=np.int64)
    # Longest first: a container is longer than what it contains, so its split is known when its matches are read.
    for k in sorted(range(len(names)), key=lambda j: -len(names[j])):
        m = mask[k]
        split[k] = given[k] if m == 0 else 1 if m & 1 else 4 if m & 4 else 2
        for _, p in automaton.iter(names[k]):
            if p != k:
                mask[p] |= split[k]
                mask_given[p] |= given[k]
    bit_name = {bit: name for name, bit in SPLIT_BITS.items()}
    splits = np.array([bit_name[int(b)] for b in split[key_of]], dtype=object)
    return splits, mask[key_of], mask_given[key_of]


def leak_report(texts: Sequence[str] | np.ndarray, split: np.ndarray, container_mask: np.ndarray) -> dict:
    """How many val/test texts of SPLIT occur inside a train text (CONTAINER_MASK from `split_by_containment`)."""
    inside_train = (container_mask & SPLIT_BITS["train"]) > 0
    out: dict[str, int | float] = {"texts_inside_other_texts": int((container_mask > 0).sum())}
    for name in ("val", "test"):
        members = split == name
        n = int(members.sum())
        leaked = int((members & inside_train).sum())
        out[f"{name}_inside_train"] = leaked
        out[f"{name}_inside_train_share"] = round(leaked / n, 4) if n else 0.0
    return out
