"""The trained levers of the model issue, each against the same fine-tuning without it: extra input
features of the BERT-CRF learnt during fine-tuning (a lexicon, LAC's tags), and distillation from
a teacher (one model, or several averaged).

Arms (``--arm``):

- ``off``: plain fine-tuning, the baseline.
- ``lexicon``: for each character, which jieba nr/ns/nt dictionary words (two characters or more)
  cover it, as Begin / Middle / End of a PER / LOC / ORG word (9 binary features).
- ``lac``: LAC 2.1.2's tags of the character (``bench/lac_lever.py``): Begin / Inside of a
  PER / LOC / ORG entity, and whether a word starts there (7 binary features).

Features go through a Linear(n, hidden) added to the word embeddings; it starts at zero, so every
arm starts from exactly the same model (``--init``, e.g. the shipped model's FP32 weights) and sees
the same batches in the same order (same seed): the only difference is the lever. ``--teacher DIR``
(repeatable: their emissions averaged) adds the emission-matching loss of ``shiti model train
--teacher`` (squared difference, weight ``--distill-weight``). Each run trains ``--steps`` steps on
the shipped model's stage-5 mix and is scored (FP32) on the four dev splits at the end; ``--save
DIR`` keeps an ``off`` arm's weights (e.g. a distilled student) for ``shiti model quantize``.

Usage (jieba for the lexicon arm only: ``pip install jieba==0.42.1``)::

    python -W ignore bench/trained_levers.py --init ../runs/zh2/best --steps 600 --arm off
    python -W ignore bench/trained_levers.py --init ../runs/zh2/best --steps 600 --arm lexicon
    python -W ignore bench/trained_levers.py --init ../runs/zh2/best --steps 600 --arm lac
    python -W ignore bench/trained_levers.py --init ../runs/zh2/best --steps 600 --arm off \
        --teacher ../runs/zh1/best --teacher ../runs/zh2/best
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from accuracy import DATA, dev_files  # noqa: E402
from lexicon_prior import jieba_lexicon, matches  # noqa: E402

TYPES = ["PER", "LOC", "ORG"]
N_FEATS = {"off": 0, "lexicon": 3 * len(TYPES), "lac": 2 * len(TYPES) + 1}
RUNS = ROOT.parent / "runs"
# The shipped model's stage-5 mix (MODEL_CARD.md): file, sampling weight.
MIX = [(RUNS / "data" / "msra-train.txt", 1.0), (RUNS / "data" / "pd-all.txt", 0.5),
       (DATA / "weibo" / "train.txt", 4.0), (DATA / "resume" / "train.txt", 1.5),
       (RUNS / "data" / "cluener-train.txt", 1.5)]


def lexicon_features(text: str, lexicon: dict[str, str]) -> np.ndarray:
    """(len(text), 9) soft-lexicon features of ``text``."""
    out = np.zeros((len(text), N_FEATS["lexicon"]), dtype=np.float32)
    for start, end, typ in matches(text, lexicon):
        t = TYPES.index(typ)
        out[start, 3 * t] = 1.0
        out[start + 1:end - 1, 3 * t + 1] = 1.0
        out[end - 1, 3 * t + 2] = 1.0
    return out


def lac_features(tags: list[int]) -> np.ndarray:
    """(len(tags), 7) features of LAC's 49-tag path: B/I of PER/LOC/ORG (tags 16-21), word start."""
    out = np.zeros((len(tags), N_FEATS["lac"]), dtype=np.float32)
    for i, tag in enumerate(tags):
        if 16 <= tag <= 21:
            out[i, tag - 16] = 1.0
        out[i, 6] = float(tag % 2 == 0)  # "X-B" tags are even; 48 ("O") is a one-character unit
    return out


def featurizer(arm: str) -> Callable[[list[str]], list[np.ndarray]]:
    """The arm's feature extractor: texts -> one (len(text), N_FEATS[arm]) array each."""
    if arm == "lexicon":
        lexicon = jieba_lexicon()
        return lambda texts: [lexicon_features(t, lexicon) for t in texts]
    if arm == "lac":
        from lac_lever import Lac

        lac = Lac()
        return lambda texts: [lac_features(tags) for tags in lac.tags_many(texts)]
    return lambda texts: [np.zeros((len(t), 0), dtype=np.float32) for t in texts]


class AveragedTeacher:
    """Frozen teachers whose emissions are averaged (one teacher: its own)."""

    def __init__(self, paths: list[str], init: str) -> None:
        from worker.model.training.train import LABELS, _load_teacher

        self.members = [_load_teacher(p, list(LABELS), Path(init)) for p in paths]

    def emissions(self, ids: Any, att: Any, widx: Any) -> Any:
        return sum(m.emissions(ids, att, widx).float() for m in self.members) / len(self.members)


def make_model(init: str, n_feats: int) -> Any:
    import torch
    from torch import nn

    from worker.model.training.train import LABELS, init_model

    model = init_model(init, len(LABELS), None)
    if n_feats:
        model.lex = nn.Linear(n_feats, model.config.hidden_size)
        nn.init.zeros_(model.lex.weight)
        nn.init.zeros_(model.lex.bias)

    def emissions(ids: torch.Tensor, att: torch.Tensor, widx: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        embeds = model.encoder.embeddings.word_embeddings(ids)
        if n_feats:
            tok = torch.zeros(ids.shape[0], ids.shape[1], n_feats, dtype=feats.dtype)
            tok.scatter_(1, widx.unsqueeze(-1).expand(-1, -1, n_feats), feats)
            embeds = embeds + model.lex(tok).to(embeds.dtype)
        hidden = model.encoder(inputs_embeds=embeds, attention_mask=att,
                               token_type_ids=torch.zeros_like(ids)).last_hidden_state
        words = hidden.gather(1, widx.unsqueeze(-1).expand(-1, -1, hidden.size(-1)))
        return model.linear(words).float()

    model.lex_emissions = emissions
    return model


def encode(sents: list[Any], enc: Any, feats: Callable[[list[str]], list[np.ndarray]],
           max_words: int) -> list[tuple[Any, ...]]:
    """``make_examples`` of the training code, each piece with its features appended."""
    from worker.model.training.train import LABELS, _chunks, make_examples

    examples = make_examples(sents, enc, {lab: i for i, lab in enumerate(LABELS)}, max_words)
    texts = [piece.text for s in sents for piece in _chunks(s, max_words)]
    return [(*e, f) for e, f in zip(examples, feats(texts), strict=True)]


def collate(examples: list[tuple[Any, ...]]) -> dict[str, Any]:
    import torch

    from worker.model.training.train import collate as base_collate

    batch = base_collate([e[:3] for e in examples])
    feats = torch.zeros(len(examples), batch["word_index"].shape[1], examples[0][3].shape[1])
    for b, e in enumerate(examples):
        feats[b, :len(e[3])] = torch.from_numpy(e[3])
    batch["feats"] = feats
    return batch


def dev_scores(model: Any, dev: dict[str, list[tuple[Any, ...]]]) -> dict[str, float]:
    """FP32 exact-match F1 per dev file, by the training code's own scorer."""
    from worker.model.training.train import LABELS, dev_f1

    def emissions(b: dict[str, Any]) -> Any:
        return model.lex_emissions(b["input_ids"], b["attention_mask"], b["word_index"], b["feats"])

    return {name: round(dev_f1(model, ex, list(LABELS), 0, collate_fn=collate, emissions=emissions), 4)  # type: ignore[arg-type]
            for name, ex in dev.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--init", required=True, help="FP32 RaNER directory to continue from")
    ap.add_argument("--arm", choices=list(N_FEATS), required=True, help="which input features (off: none)")
    ap.add_argument("--teacher", action="append", default=[], help="distil from this RaNER dir (repeatable: averaged)")
    ap.add_argument("--distill-weight", type=float, default=1.0)
    ap.add_argument("--save", type=Path, default=None,
                    help="write the trained model here as a RaNER directory (arm off: the served architecture)")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--head-lr", type=float, default=3e-4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()
    if args.save is not None and args.arm != "off":
        ap.error("--save needs --arm off: input features are not part of the served model")
    import torch

    from worker.model.conversion.checkpoint import read_tokenizer
    from worker.model.serving.encoding import CharEncoder
    from worker.model.training.bio import read_bio
    from worker.model.training.train import distill_loss, epoch_order, make_batches

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    feats = featurizer(args.arm)
    enc = CharEncoder(read_tokenizer(Path(args.init))[0])
    t_feats = time.time()
    per_file = [encode(list(read_bio(path)), enc, feats, 126) for path, _ in MIX]
    train_ex = [e for f in per_file for e in f]
    dev = {f"{Path(f).parent.name}/{Path(f).name}": encode(list(read_bio(f)), enc, feats, 126)
           for f in dev_files(RUNS / "data")}
    print(f"encoded {len(train_ex):,} training pieces in {time.time() - t_feats:.0f} s", flush=True)
    teacher = AveragedTeacher(args.teacher, args.init) if args.teacher else None
    model = make_model(args.init, N_FEATS[args.arm])
    head = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
    body = [p for n, p in model.named_parameters() if n.startswith("encoder.")]
    opt = torch.optim.AdamW([{"params": body, "lr": args.lr}, {"params": head, "lr": args.head_lr}], weight_decay=0.01)
    warmup = 50
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, 1 - s / args.steps))
    rng = random.Random(args.seed)
    order = epoch_order([len(f) for f in per_file], [w for _, w in MIX], rng)
    batches = make_batches([e[:3] for e in train_ex], 2048, rng, order)
    model.train()
    t0 = time.time()
    for step in range(args.steps):
        b = collate([train_ex[j] for j in batches[step % len(batches)]])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            em = model.lex_emissions(b["input_ids"], b["attention_mask"], b["word_index"], b["feats"])
        loss = model.loss(em, b["tags"], b["word_mask"])
        if teacher is not None:
            loss = loss + args.distill_weight * distill_loss(teacher, em, b, bf16=True)  # type: ignore[arg-type]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 100 == 0:
            print(f"step {step} loss {loss.item():.3f} {time.time() - t0:.0f} s", flush=True)
    if args.save is not None:
        from worker.model.conversion.raner_dir import write_raner_dir
        from worker.model.training.train import LABELS

        write_raner_dir(model, labels=list(LABELS), vocab=Path(args.init) / "vocab.txt", out=args.save, char_mode=True)
    scores = dev_scores(model, dev)
    macro = round(sum(scores.values()) / len(scores), 4)
    print(json.dumps({"arm": args.arm, "teachers": args.teacher, "steps": args.steps, "seconds": round(time.time() - t0),
                      "dev_f1": scores, "dev_macro": macro}), flush=True)


if __name__ == "__main__":
    main()
