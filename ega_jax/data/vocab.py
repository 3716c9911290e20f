"""Character vocabulary (TF-free, so models and generation can use it anywhere)."""

from __future__ import annotations

import collections
import json
import os
from typing import Iterable, Sequence

import numpy as np

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")


class CharVocab:
    def __init__(self, chars: Sequence[str], counts: Sequence[int] | None = None, min_count: int = 1):
        self.chars = list(chars)
        self.counts = list(counts) if counts is not None else [0] * len(self.chars)
        self.min_count = min_count
        self._index = {c: i + len(SPECIALS) for i, c in enumerate(self.chars)}

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 2) -> "CharVocab":
        counts = collections.Counter()
        for t in texts:
            counts.update(t)
        return cls.from_counts(counts, min_count)

    @classmethod
    def from_counts(cls, counts, min_count: int = 2) -> "CharVocab":
        """From {character: count} (e.g. combined by a Beam pipeline)."""
        # Most frequent first; ties by code point so the file is deterministic.
        kept = sorted(((c, n) for c, n in counts.items() if n >= min_count), key=lambda x: (-x[1], x[0]))
        return cls([c for c, _ in kept], [n for _, n in kept], min_count)

    def __len__(self) -> int:
        return len(SPECIALS) + len(self.chars)

    def encode(self, text: str, max_len: int | None = None) -> np.ndarray:
        """Characters then <eos>, padded with <pad> to max_len (truncating the text if needed)."""
        ids = [self._index.get(c, UNK) for c in text]
        if max_len is not None:
            ids = ids[:max_len - 1]
        ids.append(EOS)
        if max_len is not None:
            ids += [PAD] * (max_len - len(ids))
        return np.asarray(ids, np.int32)

    def decode(self, ids: Iterable[int]) -> str:
        out = []
        for i in ids:
            i = int(i)
            if i == EOS or i == PAD:
                break
            if i == BOS:
                continue
            out.append(self.chars[i - len(SPECIALS)] if i >= len(SPECIALS) else "\ufffd")
        return "".join(out)

    def codepoint_table(self) -> tuple[np.ndarray, np.ndarray]:
        """(code points, ids) for a tf.lookup table in the input pipeline."""
        return (np.asarray([ord(c) for c in self.chars], np.int64),
                np.arange(len(SPECIALS), len(self), dtype=np.int64))

    def save(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"specials": list(SPECIALS), "min_count": self.min_count,
                       "chars": [[c, n] for c, n in zip(self.chars, self.counts)]},
                      f, ensure_ascii=False, indent=0)

    @classmethod
    def load(cls, path: str) -> "CharVocab":
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        if tuple(d["specials"]) != SPECIALS:
            raise ValueError(f"{path}: specials {d['specials']} differ from {SPECIALS}")
        return cls([c for c, _ in d["chars"]], [n for _, n in d["chars"]], d["min_count"])


def load_vocab(directory: str) -> CharVocab:
    """vocab.json of a built dataset or of a finished sentence-VAE stage."""
    path = os.path.join(directory, "vocab.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found; build the dataset first (python -m ega_jax.data.build)")
    return CharVocab.load(path)
