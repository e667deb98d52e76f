"""The inference network: pure-torch BERT -> Linear(hidden, labels) -> CRF parameters.

Same module names as the training :class:`~worker.model.network.BertCrf` (``encoder``,
``linear``, ``crf.{start_transitions,end_transitions,transitions}``), so the same state
dicts load, but built on :mod:`worker.model.bert` and without torchcrf or transformers:
a worker only needs the CRF's three tensors for Viterbi.
"""

from __future__ import annotations

import torch
from torch import nn

from worker.model.bert import BertEncoder, BertShape


class CrfParams(nn.Module):
    """The tensors of a linear-chain CRF (torchcrf's names), for decoding only."""

    def __init__(self, num_tags: int) -> None:
        super().__init__()
        self.start_transitions = nn.Parameter(torch.empty(num_tags))
        self.end_transitions = nn.Parameter(torch.empty(num_tags))
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))


class TaggerNet(nn.Module):
    """BERT-CRF for inference; one label per word (first sub-token of each word)."""

    def __init__(self, shape: BertShape, num_labels: int, *, pooler: bool = False) -> None:
        super().__init__()
        self.config = shape
        self.encoder = BertEncoder(shape, pooler=pooler)
        self.linear = nn.Linear(shape.hidden_size, num_labels)
        self.crf = CrfParams(num_labels)

    @property
    def num_labels(self) -> int:
        return self.linear.out_features

    def emissions(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        word_index: torch.Tensor | None,
    ) -> torch.Tensor:
        """Per-word emission scores, shape (batch, words, labels), in float32.

        Args:
            input_ids: (B, T) token ids including [CLS]/[SEP] and padding.
            attention_mask: (B, T) 1 for real tokens, or ``None`` when nothing is padded.
            word_index: (B, W) position of each word's first sub-token, or ``None`` when
                word ``i`` is token ``i + 1`` (char mode without multi-piece characters).
        """
        hidden = self.encoder(input_ids, attention_mask)
        if word_index is None:
            words = hidden[:, 1:-1]
        else:
            idx = word_index.unsqueeze(-1).expand(-1, -1, hidden.size(-1))
            words = hidden.gather(1, idx)
        return self.linear(words.to(self.linear.weight.dtype)).float()
