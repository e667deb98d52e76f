"""A small pure-torch BERT encoder for inference (no transformers import).

Module and parameter names are exactly those of transformers' ``BertModel``
(``embeddings.word_embeddings``, ``encoder.layer.{i}.attention.self.query``, ...,
``encoder.layer.{i}.output.LayerNorm``, ``pooler.dense``), so RaNER checkpoints and
our INT8 artifacts load into it with ``load_state_dict(..., assign=True)``. Importing
transformers costs ~150 MiB of RSS and seconds of start-up in every worker; this
module is the whole forward pass a tagger needs: embeddings + LayerNorm, post-LN
layers with ``scaled_dot_product_attention`` under a padding mask and a GELU FFN.
Training keeps using transformers (``network.py``); a parity test holds them equal.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

_ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu, "gelu_new": lambda x: F.gelu(x, approximate="tanh")}


@dataclass(frozen=True)
class BertShape:
    """The ``config.json`` fields the encoder's shape and maths depend on."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> BertShape:
        """Pick the known fields from a ``config.json`` dict (others are ignored).

        Raises:
            ValueError: a field has the wrong type, the hidden size does not split into
                the heads, or the activation is not one BERT uses.
        """
        names = {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {}
        for name, kind in names.items():
            if name in raw and raw[name] is not None:
                cast = {"int": int, "float": float, "str": str}[str(kind)]
                values[name] = cast(raw[name])
        shape = cls(**values)
        if shape.hidden_size % shape.num_attention_heads:
            raise ValueError(f"hidden_size {shape.hidden_size} is not a multiple of {shape.num_attention_heads} heads")
        if shape.hidden_act not in _ACTIVATIONS:
            raise ValueError(f"hidden_act {shape.hidden_act!r} is not supported")
        return shape

    @classmethod
    def from_file(cls, path: str | Path) -> BertShape:
        """The shape in a ``config.json`` file."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def to_dict(self) -> dict[str, Any]:
        """A ``config.json`` dict transformers' ``BertConfig`` reads back to the same shape."""
        return {"model_type": "bert", **asdict(self)}


def _embedding(rows: int, dim: int) -> nn.Embedding:
    return nn.Embedding(rows, dim, _weight=torch.zeros(rows, dim))


class BertEmbeddings(nn.Module):
    def __init__(self, shape: BertShape) -> None:
        super().__init__()
        # Weights given up front: Embedding's own init (normal_) on the ``meta`` device pulls in
        # hundreds of extra modules and their memory; the real weights come from the checkpoint anyway.
        self.word_embeddings = _embedding(shape.vocab_size, shape.hidden_size)
        self.position_embeddings = _embedding(shape.max_position_embeddings, shape.hidden_size)
        self.token_type_embeddings = _embedding(shape.type_vocab_size, shape.hidden_size)
        self.LayerNorm = nn.LayerNorm(shape.hidden_size, eps=shape.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        steps = input_ids.shape[1]
        # Token type is always 0 (single segment); positions start at 0 for every row. Summed in
        # BertModel's order (word + type, then + position) so FP32 results match it bit for bit
        # and INT8 activation rounding does not flip on last-bit differences.
        x = self.word_embeddings(input_ids) + self.token_type_embeddings.weight[0]
        x += self.position_embeddings.weight[:steps]
        return self.LayerNorm(x)


class BertSelfAttention(nn.Module):
    def __init__(self, shape: BertShape) -> None:
        super().__init__()
        self.heads = shape.num_attention_heads
        self.query = nn.Linear(shape.hidden_size, shape.hidden_size)
        self.key = nn.Linear(shape.hidden_size, shape.hidden_size)
        self.value = nn.Linear(shape.hidden_size, shape.hidden_size)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        bsz, steps, hidden = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(bsz, steps, self.heads, hidden // self.heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(
            split(self.query(x)), split(self.key(x)), split(self.value(x)), attn_mask=mask
        )
        return out.transpose(1, 2).reshape(bsz, steps, hidden)


class BertSelfOutput(nn.Module):
    def __init__(self, shape: BertShape) -> None:
        super().__init__()
        self.dense = nn.Linear(shape.hidden_size, shape.hidden_size)
        self.LayerNorm = nn.LayerNorm(shape.hidden_size, eps=shape.layer_norm_eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class BertAttention(nn.Module):
    def __init__(self, shape: BertShape) -> None:
        super().__init__()
        self.self = BertSelfAttention(shape)
        self.output = BertSelfOutput(shape)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return self.output(self.self(x, mask), x)


class BertIntermediate(nn.Module):
    def __init__(self, shape: BertShape) -> None:
        super().__init__()
        self.dense = nn.Linear(shape.hidden_size, shape.intermediate_size)
        self.act = _ACTIVATIONS[shape.hidden_act]
        # Per-channel factor applied after the activation when the FFN is smoothed for INT8
        # (smooth.py); absent (None, not in the state dict) in every ordinary checkpoint.
        self.out_scale: torch.Tensor | None
        self.register_buffer("out_scale", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.dense(x))
        # In place: the activation's backward needs its input, not this output.
        return y if self.out_scale is None else y.mul_(self.out_scale)


class BertOutput(nn.Module):
    def __init__(self, shape: BertShape) -> None:
        super().__init__()
        self.dense = nn.Linear(shape.intermediate_size, shape.hidden_size)
        self.LayerNorm = nn.LayerNorm(shape.hidden_size, eps=shape.layer_norm_eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class BertLayer(nn.Module):
    def __init__(self, shape: BertShape) -> None:
        super().__init__()
        self.attention = BertAttention(shape)
        self.intermediate = BertIntermediate(shape)
        self.output = BertOutput(shape)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = self.attention(x, mask)
        return self.output(self.intermediate(x), x)


class BertLayers(nn.Module):
    def __init__(self, shape: BertShape) -> None:
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(shape) for _ in range(shape.num_hidden_layers))


class BertPooler(nn.Module):
    """Kept only so checkpoints that carry pooler weights load; a tagger never runs it."""

    def __init__(self, shape: BertShape) -> None:
        super().__init__()
        self.dense = nn.Linear(shape.hidden_size, shape.hidden_size)


class BertEncoder(nn.Module):
    """``BertModel``'s parameter layout; ``forward`` returns the last hidden state."""

    def __init__(self, shape: BertShape, *, pooler: bool = False) -> None:
        super().__init__()
        self.config = shape
        self.embeddings = BertEmbeddings(shape)
        self.encoder = BertLayers(shape)
        self.pooler = BertPooler(shape) if pooler else None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states (B, T, H).

        Args:
            input_ids: (B, T) token ids.
            attention_mask: (B, T), nonzero/True for real tokens; ``None`` when no row is padded.
        """
        x = self.embeddings(input_ids)
        mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            # (B, 1, 1, T) additive: every query sees the real keys of its row only. A float
            # mask built once is faster than a bool one, which SDPA converts in every layer.
            mask = torch.zeros(attention_mask.shape, dtype=x.dtype)
            mask.masked_fill_(~attention_mask.bool(), torch.finfo(x.dtype).min)
            mask = mask[:, None, None, :]
        for layer in self.encoder.layer:
            x = layer(x, mask)
        return x

