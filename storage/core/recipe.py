"""What makes two taggings of the same text give the same entities: the recipe.

A document's entities are a function of its text, the model (content hash), the dictionary
(content hash), the character fold and the window settings, and nothing else (every window runs
alone: README, "The same text gives the same entities"). Two documents with the same text hash
and the same recipe get the same rows, so an incremental job copies them instead of tagging.
The producer computes the recipe from its settings, the worker from its own; where they differ
(other window settings), nothing is reused, which is the safe side.
"""

from __future__ import annotations

import hashlib


def text_hash(text: str) -> str:
    """sha256 hex of a document's stored text."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def recipe(*, model_hash: str | None, dictionary_hash: str | None, fold: str | None, max_length: int | None,
           overlap: int) -> str:
    """The recipe key (32 hex characters) of a tagging."""
    parts = [model_hash or "", dictionary_hash or "", fold or "", str(int(max_length or 0)), str(int(overlap))]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
