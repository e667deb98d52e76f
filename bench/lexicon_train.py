"""The "lexicon" lever of the model issue in its trained form: soft-lexicon features as extra
inputs of the BERT-CRF, learnt during fine-tuning, against the same fine-tuning without them.

Features: for each character, which jieba nr/ns/nt dictionary words (two characters or more)
cover it, as Begin / Middle / End of a PER / LOC / ORG word (9 binary features). A Linear(9, hidden)
adds them to the word embeddings; it starts at zero, so both arms start from exactly the same
model (``--init``, e.g. the shipped model's FP32 weights) and see the same batches in the same
order (same seed): the only difference is the features. Each arm trains ``--steps`` steps on the
shipped model's stage-5 mix and is scored (FP32) on the four dev splits at the end.

Usage (jieba for this measurement only: ``pip install jieba==0.42.1``)::

    python -W ignore bench/lexicon_train.py --init ../runs/zh2/best --steps 600 --arm off
    python -W ignore bench/lexicon_train.py --init ../runs/zh2/best --steps 600 --arm on
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from accuracy import DATA, dev_files  # noqa: E402
from lexicon_prior import MAX_WORD, jieba_lexicon  # noqa: E402

TYPES = ["PER", "LOC", "ORG"]
N_FEATS = 3 * len(TYPES)  # B, M, E of each type
RUNS = ROOT.parent / "runs"
# The shipped model's stage-5 mix (MODEL_CARD.md): file, sampling weight.
MIX = [(RUNS / "data" / "msra-train.txt", 1.0), (RUNS / "data" / "pd-all.txt", 0.5),
       (DATA / "weibo" / "train.txt", 4.0), (DATA / "resume" / "train.txt", 1.5),
       (RUNS / "data" / "cluener-train.txt", 1.5)]


def features(text: str, lexicon: dict[str, str]) -> np.ndarray:
    """(len(text), 9) soft-lexicon features of ``text``."""
    out = np.zeros((len(text), N_FEATS), dtype=np.float32)
    for start in range(len(text)):
        for end in range(start + 2, min(len(text), start + MAX_WORD) + 1):
            typ = lexicon.get(text[start:end])
            if typ is None:
                continue
            t = TYPES.index(typ)
            out[start, 3 * t] = 1.0
            out[start + 1:end - 1, 3 * t + 1] = 1.0
            out[end - 1, 3 * t + 2] = 1.0
    return out


def make_model(init: str, lexicon_on: bool) -> Any:
    import torch
    from torch import nn

    from worker.model.training.train import LABELS, init_model

    model = init_model(init, len(LABELS), None)
    if lexicon_on:
        model.lex = nn.Linear(N_FEATS, model.config.hidden_size)
        nn.init.zeros_(model.lex.weight)
        nn.init.zeros_(model.lex.bias)

    def emissions(ids: torch.Tensor, att: torch.Tensor, widx: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        embeds = model.encoder.embeddings.word_embeddings(ids)
        if lexicon_on:
            tok = torch.zeros(ids.shape[0], ids.shape[1], N_FEATS, dtype=feats.dtype)
            tok.scatter_(1, widx.unsqueeze(-1).expand(-1, -1, N_FEATS), feats)
            embeds = embeds + model.lex(tok).to(embeds.dtype)
        hidden = model.encoder(inputs_embeds=embeds, attention_mask=att,
                               token_type_ids=torch.zeros_like(ids)).last_hidden_state
        words = hidden.gather(1, widx.unsqueeze(-1).expand(-1, -1, hidden.size(-1)))
        return model.linear(words).float()

    model.lex_emissions = emissions
    return model


def encode(sents: list[Any], enc: Any, lexicon: dict[str, str], max_words: int) -> list[tuple[Any, ...]]:
    from worker.model.training.train import LABELS

    label2id = {lab: i for i, lab in enumerate(LABELS)}
    out = []
    for s in sents:
        for i in range(0, len(s.text), max_words):
            text, tags = s.text[i:i + max_words], s.tags[i:i + max_words]
            e = enc.encode(text)
            out.append((e.input_ids, e.word_index, [label2id[t] for t in tags], features(text, lexicon)))
    return out


def collate(examples: list[tuple[Any, ...]]) -> dict[str, Any]:
    import torch

    from worker.model.training.train import collate as base_collate

    batch = base_collate([e[:3] for e in examples])
    feats = torch.zeros(len(examples), batch["word_index"].shape[1], N_FEATS)
    for b, e in enumerate(examples):
        feats[b, :len(e[3])] = torch.from_numpy(e[3])
    batch["feats"] = feats
    return batch


def dev_scores(model: Any, dev: dict[str, list[tuple[Any, ...]]]) -> dict[str, float]:
    import torch

    from worker.model.serving.spans import tags_to_spans
    from worker.model.training.scoring import bio_spans, score
    from worker.model.training.train import LABELS

    model.eval()
    out = {}
    with torch.inference_mode():
        for name, examples in dev.items():
            gold, pred = [], []
            for start in range(0, len(examples), 64):
                part = examples[start:start + 64]
                b = collate(part)
                em = model.lex_emissions(b["input_ids"], b["attention_mask"], b["word_index"], b["feats"])
                for ex, path in zip(part, model.crf.decode(em, mask=b["word_mask"])):
                    found = tags_to_spans([LABELS[t] for t in path], [(i, i + 1) for i in range(len(path))])
                    pred.append({(s.start, s.end, s.label) for s in found})
                    gold.append(bio_spans([LABELS[t] for t in ex[2]]))
            out[name] = round(score(gold, pred)["f1"], 4)
    model.train()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--init", required=True, help="FP32 RaNER directory to continue from")
    ap.add_argument("--arm", choices=["on", "off"], required=True, help="with or without the lexicon features")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--head-lr", type=float, default=3e-4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()
    import torch

    from worker.model.conversion.checkpoint import read_tokenizer
    from worker.model.serving.encoding import CharEncoder
    from worker.model.training.bio import read_bio
    from worker.model.training.train import epoch_order, make_batches

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    lexicon = jieba_lexicon()
    enc = CharEncoder(read_tokenizer(Path(args.init))[0])
    per_file = [encode(list(read_bio(path)), enc, lexicon, 126) for path, _ in MIX]
    train_ex = [e for f in per_file for e in f]
    dev = {f"{Path(f).parent.name}/{Path(f).name}": encode(list(read_bio(f)), enc, lexicon, 126)
           for f in dev_files(RUNS / "data")}
    model = make_model(args.init, args.arm == "on")
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
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 100 == 0:
            print(f"step {step} loss {loss.item():.3f} {time.time() - t0:.0f} s", flush=True)
    scores = dev_scores(model, dev)
    macro = round(sum(scores.values()) / len(scores), 4)
    print(json.dumps({"arm": args.arm, "steps": args.steps, "seconds": round(time.time() - t0),
                      "dev_f1": scores, "dev_macro": macro}), flush=True)


if __name__ == "__main__":
    main()
