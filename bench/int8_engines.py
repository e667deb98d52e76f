"""Matmul throughput of the kernel libraries a tagger can use, on this CPU.

For the Linear shapes of the shipped model (hidden 384, FFN 1,536, a batch of 4,096 tokens)
and of BERT-base (768/3,072, one 1,100-token document), times ``nn.Linear`` forward in
FP32, bfloat16 (weights stored bf16), and dynamic INT8 (per-channel weights) under each
quantized engine torch offers (fbgemm: AVX2/AVX-512 VNNI; onednn: also AMX tiles), at 1 and
2 threads, and prints GFLOP/s (2 x M x K x N per call; medians of ``--repeats`` timings of 20
calls). It is the ceiling every model-level number in ``bench/`` is bounded by: a tagger
cannot tag faster than its Linear layers run.

Usage: ``python -W ignore bench/int8_engines.py [--repeats 5]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch import nn
from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

SHAPES = [(4096, 384, 1536), (4096, 1536, 384), (1100, 768, 3072), (1100, 3072, 768)]


def _time(fn, x: torch.Tensor, repeats: int) -> float:
    for _ in range(3):
        fn(x)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(20):
            fn(x)
        runs.append((time.perf_counter() - start) / 20)
    return statistics.median(runs)


def _int8(linear: nn.Linear, engine: str) -> nn.Module:
    torch.backends.quantized.engine = engine
    return quantize_dynamic(nn.Sequential(linear), {"0": per_channel_dynamic_qconfig}, dtype=torch.qint8)


def main(repeats: int) -> None:
    flags = Path("/proc/cpuinfo").read_text().split()
    isa = [f for f in ("avx512_vnni", "avx512_bf16", "amx_int8", "amx_bf16") if f in flags]
    engines = [e for e in ("fbgemm", "onednn") if e in torch.backends.quantized.supported_engines]
    print(f"torch {torch.__version__}, CPU flags {isa}; GFLOP/s, medians of {repeats}")
    cols = ["fp32", "bf16"] + [f"int8-{e}" for e in engines]
    print(f"{'threads':>7} {'M x K x N':>18} " + " ".join(f"{c:>12}" for c in cols))
    torch.manual_seed(0)
    with torch.inference_mode():
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for m, k, n in SHAPES:
                lin = nn.Linear(k, n).eval()
                x = torch.randn(m, k)
                models = {"fp32": (lin, x), "bf16": (nn.Linear(k, n).to(torch.bfloat16).eval(), x.bfloat16())}
                for e in engines:
                    models[f"int8-{e}"] = (_int8(nn.Linear(k, n).eval(), e), x)
                gflops = {c: 2 * m * k * n / _time(f, a, repeats) / 1e9 for c, (f, a) in models.items()}
                print(f"{threads:7d} {f'{m} x {k} x {n}':>18} " + " ".join(f"{gflops[c]:12.0f}" for c in cols))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    main(p.parse_args().repeats)
