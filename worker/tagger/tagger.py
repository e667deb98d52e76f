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
behind each entity's score: ``marginals.py``) runs as NumPy array ops over up to
:data:`DECODE_TOKENS` positions of windows at once, padded: one loop step per position for the lot instead of
per position of every window, with each window's path and scores a function of its own
emissions only, bit for bit (the padding and the batch-mates never enter its arithmetic).

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
from worker.tagger.marginals import Boundaries, calibrated, entity_probabilities, lattices
from worker.tagger.spans import Span, tags_to_spans
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
# Window positions decoded together (Viterbi, forward-backward): one NumPy loop step per position
# serves every window of the batch. Their emissions and tables wait for it, so the bound also caps
# what a call holds (a few MiB).
DECODE_TOKENS = 2048


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
        found: list[list[tuple[Window, list[Found]]]] = [[] for _ in texts]
        pending: list[tuple[_Item, np.ndarray]] = []
        pending_tokens = 0
        last_trim = time.monotonic()
        ran = False
        try:
            for doc, text in enumerate(texts):
                for item in self._items(doc, text) if text.strip() else []:
                    if deadline is not None and time.monotonic() > deadline:
                        raise DeadlineExceeded(f"tagging passed its deadline at document {doc} of {len(texts)}")
                    if stop is not None and stop():
                        raise Stopped(f"tagging stopped at document {doc} of {len(texts)}")
                    pending.append((item, self._emissions(item)))
                    pending_tokens += len(pending[-1][1])
                    ran = True
                    if pending_tokens >= DECODE_TOKENS:
                        self._decode_into(pending, found)
                        pending, pending_tokens = [], 0
                    if self.trim_interval is not None and time.monotonic() - last_trim >= self.trim_interval:
                        trim()
                        last_trim = time.monotonic()
            self._decode_into(pending, found)
        finally:
            if self.trim_interval is not None and ran:
                trim()
        out: list[list[Entity]] = []
        for text, windows in zip(texts, found):
            merged = merge_windows(windows, doc_len=len(text))
            out.append([Entity(f.start, f.end, f.label, text[f.start : f.end], f.score) for f in merged])
        return out

    def _emissions(self, item: _Item) -> np.ndarray:
        """(words, labels) emissions of one window: one encoder run, one row per word (its first
        sub-token; char mode without multi-piece chars: tokens 1..T-2)."""
        token_em = self.engine.token_emissions(item.ids)
        return token_em[item.word_index] if item.word_index is not None else token_em[1:-1]

    def _decode_into(self, batch: Sequence[tuple[_Item, np.ndarray]],
                     found: list[list[tuple[Window, list[Found]]]]) -> None:
        for (item, _), spans in zip(batch, self._decode(batch)):
            found[item.doc].append((item.window, spans))

    def _run(self, item: _Item) -> list[Found]:
        """Spans of one window, in document offsets."""
        return self._decode([(item, self._emissions(item))])[0]

    def _decode(self, batch: Sequence[tuple[_Item, np.ndarray]]) -> list[list[Found]]:
        """Spans of each window (document offsets) from its emissions: Viterbi and the
        forward-backward behind the scores run over the whole batch at once, padded, and each
        window's result is a function of its own emissions only (viterbi.py, marginals.py)."""
        if not batch:
            return []
        lengths = np.array([len(em) for _, em in batch])
        ems = np.zeros((len(batch), int(lengths.max()), len(self.labels)), dtype=np.float32)
        for row, (_, em) in enumerate(batch):
            ems[row, : len(em)] = em
        paths = viterbi_numpy(*self._crf, ems, lengths)
        # O tags never open, extend or close a span (spans.py), so chunking visits only the others.
        spans_of: dict[int, list[Span]] = {}
        for row, (path, n) in enumerate(zip(paths, lengths.tolist())):
            pos = np.flatnonzero(path[:n] != self._o_id)
            if len(pos):
                spans_of[row] = tags_to_spans([self.labels[t] for t in path[pos].tolist()],
                                              [(i, i + 1) for i in pos.tolist()])
        out: list[list[Found]] = [[] for _ in batch]
        if not spans_of:
            return out
        rows = list(spans_of)
        # Each entity's score: the CRF's probability of its span (marginals.py), calibrated.
        lats = lattices(*self._crf, ems[rows, : int(lengths[rows].max())], lengths[rows])
        for row, lat in zip(rows, lats):
            spans = spans_of[row]
            n = int(lengths[row])
            probs = entity_probabilities(lat, paths[row, :n], [(sp.start, sp.end) for sp in spans], self._bounds)
            if self.platt is not None:
                probs = calibrated(probs, self.platt)
            item = batch[row][0]
            off = item.window.start
            for sp, prob in zip(spans, probs):
                if item.word_spans is None:
                    out[row].append(Found(sp.start + off, sp.end + off, sp.label, prob))
                else:
                    out[row].append(Found(item.word_spans[sp.start][0] + off, item.word_spans[sp.end - 1][1] + off,
                                          sp.label, prob))
        return out
