"""A torch model (INT8 artifact or RaNER directory) as a tagger :class:`~worker.tagger.tagger.Engine`.

Workers serve ONNX artifacts with onnxruntime; this engine is for conversion (smoothing
calibration, parity checks), training evaluation and RaNER directories used as they are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from worker.tagger.charvocab import CharVocab
from worker.model.checkpoint import LoadedModel
from worker.tagger.encoding import Encoder, WordEncoder


def set_threads(n: int) -> None:
    """Fix torch's intra-op threads to ``n`` and inter-op to 1 (before any torch work)."""
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already fixed in this process (a second init); harmless
        pass


class TorchEngine:
    """Runs a loaded torch ``TaggerNet`` one window at a time."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.model = loaded.model
        self.labels: list[str] = loaded.labels
        self.max_length: int = loaded.max_length
        self.source: Path = loaded.source
        self.char_vocab: CharVocab | None = loaded.char_vocab if loaded.char_mode else None
        if loaded.char_mode and self.char_vocab is None:
            raise ValueError("a char-mode model needs its char vocab")
        self.word_encoder: Encoder | None = None if loaded.char_mode else WordEncoder(loaded.tokenizer)
        crf = self.model.crf
        self.crf = tuple(p.detach().float().numpy() for p in (crf.start_transitions, crf.end_transitions,
                                                                crf.transitions))

    @torch.inference_mode()
    def token_emissions(self, ids: np.ndarray) -> np.ndarray:
        """(T,) token ids -> (T, labels) float32 emissions of every token."""
        hidden = self.model.encoder(torch.from_numpy(ids)[None], None)
        lin = self.model.linear
        return lin(hidden.to(lin.weight.dtype)).float()[0].numpy()
