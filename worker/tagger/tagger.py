"""Texts in, entities out: windows -> one encoder run per window + CRF -> spans -> merge.

**Every window runs alone** (a batch of one, never padded). Dynamic INT8 quantizes a
Linear's input with one scale per tensor, so a window run in a batch got a scale set by its
batch-mates and its padding, and the same document came out with other entities in another
batching. Run alone, a window's activations, scales and tags are a function of its tokens and
the model only, so a document's entities do not depend on what it is submitted with, the batch
size, the worker or the attempt; padded batches were a little faster, not enough to give that
up (see the model card). Windows are balanced (a long text is cut into equal windows, see
:func:`~worker.tagger.windows.make_windows`), char-mode ids come from one ``str.translate`` per
text, and everything after the encoder (Viterbi, picking non-``O`` tags, the forward-backward
behind each entity's score: ``marginals.py``) runs as NumPy array ops.

This module imports no torch: the encoder run is an :class:`Engine` (onnxruntime in
workers; ``worker.model.torch_engine`` wraps a torch model in one for conversion and tests).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from storage.core.domain import Entity  # the one entity value type, shared with storage
from worker.tagger.merge import Found, merge_windows
from worker.tagger.charvocab import CharVocab
from worker.tagger.encoding import Encoder
from worker.tagger.errors import DeadlineExceeded, Stopped
from worker.tagger.heap import trim
from worker.tagger.marginals import Boundaries, calibrated, entity_probabilities, lattice
from worker.tagger.spans import tags_to_spans
from worker.tagger.viterbi import viterbi_numpy
from worker.tagger.windows import Window, make_windows, word_cost


class Engine(Protocol):
    """A loaded model as the tagger sees it: text front end, labels, CRF and one encoder run."""

    labels: list[str]
    max_length: int  # largest window, special tokens included
    source: Path
    char_vocab: CharVocab | None  # char mode
    word_encoder: Encoder | None  # word mode
    crf: tuple[np.ndarray, np.ndarray, np.ndarray]  # start, end, transitions (float32)

    def token_emissions(self, ids: np.ndarray) -> np.ndarray:
        """(T,) int64 token ids of one window -> (T, labels) float32 emissions of every token."""
        ...


DEFAULT_OVERLAP = 64
# glibc keeps the memory freed after each window in a heap that fragments and grows within a
# call, so the heap is trimmed (malloc_trim) at most this often (seconds); see MODEL_CARD.md.
TRIM_INTERVAL = 0.25


@dataclass
class _Item:
    doc: int
    window: Window
    ids: np.ndarray  # int64 token ids, [CLS] ... [SEP]
    word_index: np.ndarray | None  # first sub-token of each word; None: word i is token i + 1
    word_spans: list[tuple[int, int]] | None  # None: word i is character i (char mode)


class Tagger:
    """Runs one loaded model over many texts."""

    def __init__(
        self,
        model: Engine,
        *,
        max_length: int | None = None,
        overlap: int = DEFAULT_OVERLAP,
        trim_interval: float | None = TRIM_INTERVAL,
    ) -> None:
        """Args:
            model: the loaded model (an ONNX artifact, or a torch model wrapped by ``worker.model``).
            max_length: window size in tokens, specials included (default and cap: the model's).
            overlap: tokens two neighbouring windows share.
            trim_interval: give freed memory back to the OS at most this often (seconds) during
                a call, and at its end; ``None``: never (heap.py).
        """
        self.engine = model
        self.trim_interval = trim_interval
        self.labels = self.engine.labels
        self.max_length = min(max_length or self.engine.max_length, self.engine.max_length)
        if self.max_length < 3:
            raise ValueError(f"max_length {self.max_length} leaves no room for text")
        self.overlap = overlap
        self._o_id = self.labels.index("O") if "O" in self.labels else -1
        self._crf = self.engine.crf
        # The map from span marginal to calibrated score (the artifact's crf.json; None: the raw marginal).
        self.platt: tuple[float, float] | None = getattr(self.engine, "score_platt", None)
        self._bounds = Boundaries.of(self.labels)
        self._chars = self.engine.char_vocab
        self._words = self.engine.word_encoder if self._chars is None else None
        if self._chars is None and self._words is None:
            raise ValueError(f"{self.engine.source}: the model has neither a char vocab nor a word encoder")

    def windows(self, text: str) -> list[Window]:
        """The windows this tagger cuts ``text`` into."""
        if self._chars is not None:
            counts = self._chars.text_ids(text).counts
            return self._char_windows(text, counts)
        assert self._words is not None
        return make_windows(text, max_tokens=self.max_length - 2, overlap=self.overlap, cost=word_cost,
                            count_tokens=self._words.count_tokens, balanced=True)

    def _char_windows(self, text: str, counts: np.ndarray | None) -> list[Window]:
        cost = None
        if counts is not None:
            per_char = dict(zip(text, counts.tolist()))
            cost = per_char.__getitem__
        return make_windows(text, max_tokens=self.max_length - 2, overlap=self.overlap, cost=cost, balanced=True)

    def _items(self, doc: int, text: str) -> list[_Item]:
        if self._chars is None:
            assert self._words is not None
            items = []
            for w in self.windows(text):
                enc = self._words.encode(text[w.start : w.end])
                if enc.word_index:
                    ids = np.asarray(enc.input_ids, dtype=np.int64)
                    items.append(_Item(doc, w, ids, np.asarray(enc.word_index, dtype=np.int64), enc.word_spans))
            return items
        got = self._chars.text_ids(text)
        head, tail = np.array([self._chars.cls]), np.array([self._chars.sep])
        items = []
        if got.counts is None:  # one id per character: token offsets are char offsets
            for w in self._char_windows(text, None):
                items.append(_Item(doc, w, np.concatenate([head, got.ids[w.start : w.end], tail]), None, None))
            return items
        ends = np.cumsum(got.counts)
        starts = ends - got.counts
        for w in self._char_windows(text, got.counts):
            lo, hi = int(starts[w.start]), int(ends[w.end - 1])
            word_index = starts[w.start : w.end] - lo + 1
            items.append(_Item(doc, w, np.concatenate([head, got.ids[lo:hi], tail]), word_index, None))
        return items

    def annotate(self, texts: Sequence[str], *, deadline: float | None = None,
                 stop: Callable[[], bool] | None = None) -> list[list[Entity]]:
        """Entities of every text, in document order; each text's entities depend on it alone.

        Args:
            texts: documents (any length; empty or blank ones give ``[]``).
            deadline: ``time.monotonic()`` value after which no new window is started.
            stop: asked before every window; once it returns true no new window is started
                (a cancelled job's long document is abandoned within one window).

        Raises:
            DeadlineExceeded: the deadline passed before all windows ran.
            Stopped: ``stop`` returned true before all windows ran.
        """
        out: list[list[Entity]] = []
        last_trim = time.monotonic()
        ran = False
        try:
            for doc, text in enumerate(texts):
                found: list[tuple[Window, list[Found]]] = []
                for item in self._items(doc, text) if text.strip() else []:
                    if deadline is not None and time.monotonic() > deadline:
                        raise DeadlineExceeded(f"tagging passed its deadline at document {doc} of {len(texts)}")
                    if stop is not None and stop():
                        raise Stopped(f"tagging stopped at document {doc} of {len(texts)}")
                    found.append((item.window, self._run(item)))
                    ran = True
                    if self.trim_interval is not None and time.monotonic() - last_trim >= self.trim_interval:
                        trim()
                        last_trim = time.monotonic()
                merged = merge_windows(found, doc_len=len(text))
                out.append([Entity(f.start, f.end, f.label, text[f.start : f.end], f.score) for f in merged])
        finally:
            if self.trim_interval is not None and ran:
                trim()
        return out

    def _run(self, item: _Item) -> list[Found]:
        """Spans of one window, in document offsets."""
        token_em = self.engine.token_emissions(item.ids)
        # One row per word: its first sub-token (char mode without multi-piece chars: tokens 1..T-2).
        em = token_em[item.word_index] if item.word_index is not None else token_em[1:-1]
        path = viterbi_numpy(*self._crf, em[None], np.array([len(em)]))[0]
        # O tags never open, extend or close a span (spans.py), so chunking visits only the others.
        pos = np.flatnonzero(path != self._o_id)
        if not len(pos):
            return []
        at = pos.tolist()
        spans = tags_to_spans([self.labels[t] for t in path[pos].tolist()], [(i, i + 1) for i in at])
        # Each entity's score: the CRF's probability of its span (marginals.py), calibrated.
        probs = entity_probabilities(lattice(*self._crf, em), path, [(s.start, s.end) for s in spans], self._bounds)
        if self.platt is not None:
            probs = calibrated(probs, self.platt)
        off = item.window.start
        out = []
        for s, p in zip(spans, probs):
            if item.word_spans is None:
                out.append(Found(s.start + off, s.end + off, s.label, p))
            else:
                out.append(Found(item.word_spans[s.start][0] + off, item.word_spans[s.end - 1][1] + off, s.label, p))
        return out
