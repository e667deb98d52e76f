"""Row-wise INT8 word embeddings for artifacts.

The word-embedding table is most of a small model's file: 21,128 x 384 FP32 is 31 MiB
of the 42 MiB a 6-layer artifact weighed, against 10 MiB for all its INT8 Linears. Each
row is stored as int8 with one FP32 scale (symmetric, ``max |row| / 127``), a quarter
of the bytes; a lookup gathers the int8 rows and scales them back. The relative error
is ~0.7 % of the table's norm, measured on the shipped model (see MODEL_CARD.md); rows
are only read, never multiplied in INT8, so there is no activation rounding to go wrong.

A tagger loads ``model.pt`` memory-mapped, so only the pages of rows a text uses become
resident either way: measured on the shipped model, peak RSS did not change (the gain is the
file, and the resident table of a RaNER directory quantized at load).
"""

from __future__ import annotations

import torch
from torch import nn

SCALE_KEY = "word_embeddings.scale"
# The manifest's ``word_embeddings`` entry; artifacts written before it existed hold FP32.
INT8_ROWS = "int8-rowwise"
FLOAT_ROWS = "float32"


class Int8Embedding(nn.Module):
    """An embedding table stored as int8 rows, each with its own FP32 scale."""

    def __init__(self, rows: int, dim: int, *, device: str | torch.device = "cpu") -> None:
        super().__init__()
        self.register_buffer("weight", torch.zeros(rows, dim, dtype=torch.int8, device=device))
        self.register_buffer("scale", torch.ones(rows, device=device))

    @property
    def num_embeddings(self) -> int:
        return int(self.weight.shape[0])

    @property
    def embedding_dim(self) -> int:
        return int(self.weight.shape[1])

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.weight[ids].float() * self.scale[ids].unsqueeze(-1)

    def dequantize(self) -> torch.Tensor:
        """The FP32 table these rows stand for."""
        return self.weight.float() * self.scale[:, None]

    @classmethod
    def from_float(cls, weight: torch.Tensor) -> Int8Embedding:
        """Quantize an FP32 ``(rows, dim)`` table; an all-zero row keeps scale 1 (and stays 0)."""
        weight = weight.detach().float()
        absmax = weight.abs().amax(dim=1)
        scale = torch.where(absmax > 0, absmax / 127, torch.ones_like(absmax))
        out = cls(*weight.shape, device="meta")  # both buffers are replaced just below
        out.weight = (weight / scale[:, None]).round().clamp(-127, 127).to(torch.int8)
        out.scale = scale
        return out


def quantize_word_embeddings(model: nn.Module) -> None:
    """Replace ``model.encoder.embeddings.word_embeddings`` by its :class:`Int8Embedding`."""
    emb = model.encoder.embeddings
    emb.word_embeddings = Int8Embedding.from_float(emb.word_embeddings.weight)


def add_int8_embedding_slot(model: nn.Module, device: str = "meta") -> None:
    """Give a skeleton an :class:`Int8Embedding` of its config's shape for a saved one to load into."""
    emb = model.encoder.embeddings
    rows, dim = emb.word_embeddings.weight.shape
    emb.word_embeddings = Int8Embedding(rows, dim, device=device)


def dequantize_embedding_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict with row-wise INT8 word embeddings turned back into one FP32 table."""
    out = dict(state)
    for key in [k for k in state if k.endswith(SCALE_KEY)]:
        scale = out.pop(key)
        weight = key[: -len("scale")] + "weight"
        out[weight] = out[weight].float() * scale[:, None]
    return out
