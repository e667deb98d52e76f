"""A tiny random BERT-CRF written as a RaNER directory with ``write_raner_dir`` (docs/raner_format.md §7).

Deterministic (seeded) with a sharpened Linear layer so it emits a non-trivial mix of tags.
"""

from __future__ import annotations

from pathlib import Path

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_tiny_model(out: Path, *, chars: str, seed: int = 0, max_pos: int = 64) -> Path:
    """Write the model; ``chars`` are the characters its vocabulary knows (others map to [UNK])."""
    import torch
    from transformers import BertConfig

    from worker.model.network import BertCrf
    from worker.model.raner_dir import write_raner_dir

    out.mkdir(parents=True, exist_ok=True)
    vocab = SPECIAL + sorted(set(chars) - set(" \t\r\n"))
    vocab_file = out / "vocab.src.txt"
    vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=37, max_position_embeddings=max_pos, type_vocab_size=2)
    model = BertCrf(cfg, len(LABELS))
    with torch.no_grad():
        model.linear.weight.mul_(8.0)
        model.linear.bias.copy_(torch.randn(len(LABELS)) * 0.5)
    write_raner_dir(model, labels=LABELS, vocab=vocab_file, out=out, char_mode=True)
    vocab_file.unlink()
    return out
