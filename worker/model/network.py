"""The RaNER network: BERT encoder -> Linear(hidden, labels) -> CRF.

Module names (``encoder``, ``linear``, ``crf``) match the legacy ModelScope
``TransformerCRF`` layout (docs/raner_format.md §2.2) so a RaNER ``pytorch_model.bin``
loads with no renaming beyond stripping an optional ``head.`` prefix.
"""

from __future__ import annotations

import torch
from torch import nn
from torchcrf import CRF
from transformers import BertConfig, BertModel


class BertCrf(nn.Module):
    """BERT-CRF tagger with one label per word (first sub-token of each word)."""

    def __init__(self, config: BertConfig, num_labels: int, *, pooler: bool = False) -> None:
        super().__init__()
        self.config = config
        self.encoder = BertModel(config, add_pooling_layer=pooler)
        self.linear = nn.Linear(config.hidden_size, num_labels)
        self.crf = CRF(num_labels, batch_first=True)

    @property
    def num_labels(self) -> int:
        return self.linear.out_features

    def emissions(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        word_index: torch.Tensor,
    ) -> torch.Tensor:
        """Per-word emission scores, shape (batch, words, labels), in float32.

        Args:
            input_ids: (B, T) token ids including [CLS]/[SEP] and padding.
            attention_mask: (B, T) 1 for real tokens.
            word_index: (B, W) position of each word's first sub-token (0 for padding).
        """
        hidden = self.encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=torch.zeros_like(input_ids),
        ).last_hidden_state
        # Gather the first sub-token of each word before the Linear: fewer rows to project.
        idx = word_index.unsqueeze(-1).expand(-1, -1, hidden.size(-1))
        words = hidden.gather(1, idx)
        return self.linear(words).float()

    def loss(
        self,
        emissions: torch.Tensor,
        tags: torch.Tensor,
        word_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Mean negative log-likelihood per sequence (CRF kept in float32)."""
        from worker.model.crf_fast import crf_nll

        return crf_nll(self.crf, emissions.float(), tags, word_mask).mean()
