"""Evaluation metrics of generated danmaku."""

from __future__ import annotations

from typing import Mapping, Sequence


def scene_mentions(text: str, lexicons: Mapping[str, Sequence[str]]) -> set[str]:
    """The scenes whose lexicon has a phrase inside text."""
    return {scene for scene, phrases in lexicons.items() if any(p in text for p in phrases)}


def relation(generated: Sequence[tuple[str, Sequence[str]]], lexicons: Mapping[str, Sequence[str]]) -> dict:
    """Controlled world only: of the comments that mention some scene's phrase, the share that
    mention the frame's true scene (chance: 1/K). generated: (true scene, comments) per frame.

    Returns {"relation", "chance", "mentioning", "total", "confusion": {true: {mentioned: count}}}.
    """
    right = mentioning = total = 0
    confusion: dict[str, dict[str, int]] = {}
    for scene, comments in generated:
        for c in comments:
            total += 1
            found = scene_mentions(c, lexicons)
            if not found:
                continue
            mentioning += 1
            right += scene in found
            row = confusion.setdefault(scene, {})
            for f in found:
                row[f] = row.get(f, 0) + 1
    return {"relation": right / mentioning if mentioning else 0.0, "chance": 1.0 / len(lexicons),
            "mentioning": mentioning, "total": total, "confusion": confusion}
