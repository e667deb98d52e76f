"""Texts in, entities out: windows -> batched encoder + CRF -> spans -> merge.

Windows of all texts in a call are pooled, sorted by token length and packed into
batches under a token budget (padded length x rows), because activation memory,
not the weights, sets the peak RSS of a worker and sorting keeps padding small.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from worker.merge import Found, merge_windows
from worker.model.checkpoint import LoadedModel
from worker.model.encoding import CharEncoder, Encoded, WordEncoder
from worker.model.errors import DeadlineExceeded
from worker.model.spans import tags_to_spans
from worker.model.viterbi import viterbi
from worker.windows import Window, make_windows, word_cost

DEFAULT_OVERLAP = 64
DEFAULT_BATCH_TOKENS = 4096


@dataclass(frozen=True)
class Entity:
    """An entity in document coordinates: ``text == doc[start:end]``, end-exclusive."""

    start: int
    end: int
    label: str
    text: str
    score: float


@dataclass
class _Item:
    doc: int
    window: Window
    encoded: Encoded


class Tagger:
    """Runs one loaded model over many texts."""

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        max_length: int | None = None,
        overlap: int = DEFAULT_OVERLAP,
        batch_tokens: int = DEFAULT_BATCH_TOKENS,
    ) -> None:
        self.loaded = loaded
        self.model = loaded.model
        self.labels = loaded.labels
        self.max_length = min(max_length or loaded.max_length, loaded.max_length)
        if self.max_length < 3:
            raise ValueError(f"max_length {self.max_length} leaves no room for text")
        self.overlap = overlap
        self.batch_tokens = batch_tokens
        self._o_id = loaded.labels.index("O") if "O" in loaded.labels else -1
        if loaded.char_mode:
            char = CharEncoder(loaded.tokenizer)
            self.encoder: CharEncoder | WordEncoder = char
            self._cost = char.count_tokens
            self._count = None
        else:
            word = WordEncoder(loaded.tokenizer)
            self.encoder = word
            self._cost = word_cost
            self._count = word.count_tokens

    def windows(self, text: str) -> list[Window]:
        """The windows this tagger cuts ``text`` into."""
        return make_windows(
            text, max_tokens=self.max_length - 2, overlap=self.overlap, cost=self._cost, count_tokens=self._count
        )

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
            if not text.strip():
                continue
            for window in self.windows(text):
                enc = self.encoder.encode(text[window.start : window.end])
                if enc.word_index:
                    items.append(_Item(doc, window, enc))
        items.sort(key=lambda it: len(it.encoded.input_ids))
        found: dict[int, list[tuple[Window, list[Found]]]] = {}
        for batch in self._batches(items):
            if deadline is not None and time.monotonic() > deadline:
                raise DeadlineExceeded(f"tagging passed its deadline with {len(items)} windows queued")
            for item, spans in zip(batch, self._run(batch)):
                found.setdefault(item.doc, []).append((item.window, spans))
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
            n = len(item.encoded.input_ids)
            padded = n * (len(cur) + 1)
            # New batch when over the token budget, or when padding would waste > 20 %.
            if cur and (padded > self.batch_tokens or (padded - real - n) > 0.2 * padded):
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
        t_max = max(len(it.encoded.input_ids) for it in batch)
        w_max = max(len(it.encoded.word_index) for it in batch)
        ids = torch.zeros(bsz, t_max, dtype=torch.long)
        att = torch.zeros(bsz, t_max, dtype=torch.long)
        widx = torch.zeros(bsz, w_max, dtype=torch.long)
        wmask = torch.zeros(bsz, w_max, dtype=torch.bool)
        for b, it in enumerate(batch):
            e = it.encoded
            ids[b, : len(e.input_ids)] = torch.tensor(e.input_ids)
            att[b, : len(e.input_ids)] = 1
            widx[b, : len(e.word_index)] = torch.tensor(e.word_index)
            wmask[b, : len(e.word_index)] = True
        emissions = self.model.emissions(ids, att, widx)
        paths = viterbi(self.model.crf, emissions, wmask)
        probs = emissions.softmax(-1).gather(2, paths.unsqueeze(-1)).squeeze(-1)
        # Only windows with a non-O tag need the (Python) chunking pass.
        busy = ((paths != self._o_id) & wmask).any(1).tolist()
        out: list[list[Found]] = []
        for b, it in enumerate(batch):
            if not busy[b]:
                out.append([])
                continue
            n = len(it.encoded.word_index)
            labels = [self.labels[t] for t in paths[b, :n].tolist()]
            spans = tags_to_spans(labels, it.encoded.word_spans, probs[b, :n].tolist())
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
) -> Tagger:
    """A :class:`Tagger` over a RaNER directory (quantized at load unless ``int8=False``) or an artifact."""
    from worker.model.artifact import load_model

    return Tagger(load_model(path, int8=int8), max_length=max_length, overlap=overlap, batch_tokens=batch_tokens)
