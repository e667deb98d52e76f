"""Texts in, entities out: windows -> batched encoder + CRF -> spans -> merge.

Windows of all texts in a call are pooled, sorted by token length and packed into
batches under a token budget (padded length x rows), because activation memory,
not the weights, sets the peak RSS of a worker and sorting keeps padding small.
Windows are balanced (a long text is cut into equal windows, see
:func:`~worker.windows.make_windows`), char-mode ids come from one ``str.translate``
per text, and everything after the encoder (softmax, Viterbi, picking non-``O`` tags)
runs as NumPy array ops; Python only loops over tagged words.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from storage.domain import Entity  # the one entity value type, shared with storage
from worker.merge import Found, merge_windows
from worker.model.checkpoint import LoadedModel
from worker.model.encoding import WordEncoder
from worker.model.errors import DeadlineExceeded
from worker.model.heap import trim
from worker.model.spans import tags_to_spans
from worker.model.viterbi import viterbi_numpy
from worker.windows import Window, make_windows, word_cost

DEFAULT_OVERLAP = 64
# Activations of one batch, and the heap they leave behind, set a worker's peak RSS. On the
# shipped model over MSRA test (bench/tagger_speed.py, 3 fresh processes each, fbgemm): 4,096
# tokens 4,767 chars/s at 505 MiB peak, 1,024 tokens 5,251 chars/s at 485 MiB. With the heap
# trimmed after every batch (below), on worker-sized calls (200k chars incl. 2k-20k-char
# documents, one thread, runs interleaved): 1,024 tokens 326-332 MiB, 512 tokens 307-311 MiB,
# no slower (58-71 s vs 66-77 s for 1.2M chars): smaller batches cost no speed.
DEFAULT_BATCH_TOKENS = 512
# glibc keeps the freed activations of each batch in a heap that fragments and grows within a
# call, so the heap is trimmed (malloc_trim) between batches at most this often (seconds).
# Worker-sized calls (200k chars incl. 2k-20k-char documents): peak 468-537 MiB untrimmed,
# 307-332 MiB trimmed after every batch. Trimming costs the next batch page faults. MSRA test,
# `bench/tagger_speed.py --trim-interval off|0.25|0`, 2 runs each interleaved: never 8,448 /
# 8,986 chars/s at 467-472 MiB; at most every 0.25 s 7,303 / 8,367 (~-10 %) at 346-354 MiB;
# after every batch 7,065 / 6,770 (-19 %) at 299-300 MiB. 0.5-1 s: 359-377 MiB, speed within
# noise of never. 0.25 s keeps a real worker child under 400 MiB (383, bench/memory_soak.py).
TRIM_INTERVAL = 0.25
# A batch is closed when adding a window would make more than this share of it padding.
MAX_PADDING = 0.2




@dataclass
class _Item:
    doc: int
    window: Window
    ids: np.ndarray  # int64 token ids, [CLS] ... [SEP]
    word_index: np.ndarray | None  # first sub-token of each word; None: word i is token i + 1
    word_spans: list[tuple[int, int]] | None  # None: word i is character i (char mode)

    @property
    def n_words(self) -> int:
        return len(self.ids) - 2 if self.word_index is None else len(self.word_index)


class Tagger:
    """Runs one loaded model over many texts."""

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        max_length: int | None = None,
        overlap: int = DEFAULT_OVERLAP,
        batch_tokens: int = DEFAULT_BATCH_TOKENS,
        trim_interval: float | None = TRIM_INTERVAL,
    ) -> None:
        self.loaded = loaded
        # Give freed activation memory back between batches at most this often (seconds), and at
        # the end of each call; None: never (heap.py).
        self.trim_interval = trim_interval
        self.model = loaded.model
        self.labels = loaded.labels
        self.max_length = min(max_length or loaded.max_length, loaded.max_length)
        if self.max_length < 3:
            raise ValueError(f"max_length {self.max_length} leaves no room for text")
        self.overlap = overlap
        self.batch_tokens = batch_tokens
        self._o_id = loaded.labels.index("O") if "O" in loaded.labels else -1
        crf = self.model.crf
        self._crf = [p.detach().float().numpy() for p in (crf.start_transitions, crf.end_transitions, crf.transitions)]
        self._chars = loaded.char_vocab if loaded.char_mode else None
        if loaded.char_mode and self._chars is None:
            raise ValueError("a char-mode model needs its char vocab")
        self._words = WordEncoder(loaded.tokenizer) if self._chars is None else None
        self._pad = self._chars.pad if self._chars is not None else int(loaded.tokenizer.pad_token_id or 0)

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

    def annotate(self, texts: Sequence[str], *, deadline: float | None = None) -> list[list[Entity]]:
        """Entities of every text, in document order.

        Args:
            texts: documents (any length; empty or blank ones give ``[]``).
            deadline: ``time.monotonic()`` value after which no new batch is started.

        Raises:
            DeadlineExceeded: the deadline passed before all batches ran.
        """
        items: list[_Item] = []
        for doc, text in enumerate(texts):
            if text.strip():
                items.extend(self._items(doc, text))
        items.sort(key=lambda it: len(it.ids))
        found: dict[int, list[tuple[Window, list[Found]]]] = {}
        last_trim = time.monotonic()
        try:
            for batch in self._batches(items):
                if deadline is not None and time.monotonic() > deadline:
                    raise DeadlineExceeded(f"tagging passed its deadline with {len(items)} windows queued")
                for item, spans in zip(batch, self._run(batch)):
                    found.setdefault(item.doc, []).append((item.window, spans))
                if self.trim_interval is not None and time.monotonic() - last_trim >= self.trim_interval:
                    trim()
                    last_trim = time.monotonic()
        finally:
            if self.trim_interval is not None and items:
                trim()
        out: list[list[Entity]] = []
        for doc, text in enumerate(texts):
            merged = merge_windows(found.get(doc, []), doc_len=len(text))
            out.append([Entity(f.start, f.end, f.label, text[f.start : f.end], f.score) for f in merged])
        return out

    def _batches(self, items: list[_Item]) -> list[list[_Item]]:
        batches: list[list[_Item]] = []
        cur: list[_Item] = []
        real = 0
        for item in items:  # sorted by length, so the newest item is the longest
            n = len(item.ids)
            padded = n * (len(cur) + 1)
            # New batch when over the token budget, or when padding would waste too much.
            if cur and (padded > self.batch_tokens or (padded - real - n) > MAX_PADDING * padded):
                batches.append(cur)
                cur, real = [], 0
            cur.append(item)
            real += n
        if cur:
            batches.append(cur)
        return batches

    @torch.inference_mode()
    def _run(self, batch: list[_Item]) -> list[list[Found]]:
        bsz = len(batch)
        lens = [len(it.ids) for it in batch]
        t_max = max(lens)
        ids = np.full((bsz, t_max), self._pad, dtype=np.int64)
        for b, it in enumerate(batch):
            ids[b, : lens[b]] = it.ids
        att = None
        if min(lens) != t_max:  # padded rows: mask them out of attention
            att = torch.from_numpy(np.arange(t_max)[None] < np.asarray(lens)[:, None])
        n_words = np.array([it.n_words for it in batch])
        widx = None
        if any(it.word_index is not None for it in batch):
            w_arr = np.zeros((bsz, int(n_words.max())), dtype=np.int64)
            for b, it in enumerate(batch):
                w_arr[b, : n_words[b]] = it.word_index if it.word_index is not None else np.arange(1, n_words[b] + 1)
            widx = torch.from_numpy(w_arr)
        emissions = self.model.emissions(torch.from_numpy(ids), att, widx).numpy()
        paths = viterbi_numpy(*self._crf, emissions, n_words)
        # Probability of each chosen tag: softmax over labels, read at the path.
        top = emissions.max(-1, keepdims=True)
        log_z = np.log(np.exp(emissions - top).sum(-1)) + top[..., 0]
        chosen = np.take_along_axis(emissions, paths[..., None], axis=-1)[..., 0]
        probs = np.exp(chosen - log_z)
        # O tags never open, extend or close a span (spans.py), so chunking visits only
        # the other words, and windows with none skip it.
        tagged = (paths != self._o_id) & (np.arange(paths.shape[1])[None] < n_words[:, None])
        out: list[list[Found]] = []
        for b, it in enumerate(batch):
            pos = np.flatnonzero(tagged[b])
            if not len(pos):
                out.append([])
                continue
            labels = [self.labels[t] for t in paths[b, pos].tolist()]
            at = pos.tolist()
            spans_in = [(i, i + 1) for i in at] if it.word_spans is None else [it.word_spans[i] for i in at]
            spans = tags_to_spans(labels, spans_in, probs[b, pos].tolist())
            off = it.window.start
            out.append([Found(s.start + off, s.end + off, s.label, s.score) for s in spans])
        return out


def load_tagger(
    path: str | Path,
    *,
    max_length: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
    int8: bool = True,
    bf16: bool = False,
    engine: str = "",
) -> Tagger:
    """A :class:`Tagger` over a RaNER directory (quantized at load unless ``int8=False``) or an artifact.

    ``bf16`` (with ``int8=False`` on a RaNER dir) runs the encoder in bfloat16; measured
    slower than INT8 on the worker CPUs (see ``bench/tagger_speed.py``), kept for comparison.
    ``engine`` is the INT8 kernel library (``""``: fbgemm, see
    :func:`~worker.model.artifact.choose_engine`).
    """
    from worker.model.artifact import load_model

    loaded = load_model(path, int8=int8, engine=engine)
    if bf16:
        loaded.model.encoder.to(torch.bfloat16)
    return Tagger(loaded, max_length=max_length, overlap=overlap, batch_tokens=batch_tokens)
