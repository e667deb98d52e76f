"""A training run's state packed into a few small files, and back.

A run directory (``shiti model train --out RUN``) holds ``state.pt`` (weights, optimizer, schedule,
RNG, sampler position, best so far), ``best/`` and ``train.log``. Between machines (a lent GPU
machine returns at most eight files of at most 16 MiB each) and between working stretches, the
state travels packed: the weights in safetensors shards (float16 or bfloat16 by default; float32
keeps them exact), optionally the optimizer's moments, and ``run.json`` with everything else
(schedule, RNG states, position, best, the log). Unpacked, ``shiti model train --resume`` continues
it: bit for bit when packed in float32 with the optimizer, otherwise from rounded weights and,
without the optimizer, fresh moments (the schedule and position are kept either way).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

MIB = 1024 * 1024
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
RUN_JSON = "run.json"


def pack(run: str | Path, out: str | Path, *, dtype: str = "bfloat16", optimizer: bool = False,
         max_files: int = 8, max_file_bytes: int = 16 * MIB) -> list[Path]:
    """Write ``run``'s ``state.pt`` as at most ``max_files`` files of at most ``max_file_bytes``.

    Raises:
        ValueError: it does not fit (the message says what would: another dtype, no optimizer).
    """
    run, out = Path(run), Path(out)
    state = torch.load(run / "state.pt", weights_only=False)
    cast = DTYPES[dtype]
    tensors = {f"model/{k}": v.detach().to(cast if v.is_floating_point() else v.dtype).contiguous()
               for k, v in state["model"].items()}
    opt_meta: Any = None
    if optimizer and state.get("optimizer") is not None:
        opt = state["optimizer"]
        for pid, st in opt["state"].items():
            for name, value in st.items():
                if torch.is_tensor(value):
                    tensors[f"optimizer/{pid}/{name}"] = value.detach().float().contiguous()
        opt_meta = {"param_groups": opt["param_groups"],
                    "scalars": {str(pid): {n: v for n, v in st.items() if not torch.is_tensor(v)}
                                for pid, st in opt["state"].items()}}
    shards: list[dict[str, torch.Tensor]] = [{}]
    sizes = [0]
    budget = max_file_bytes - 64 * 1024  # room for each shard's safetensors header
    for name, t in sorted(tensors.items(), key=lambda kv: -kv[1].numel() * kv[1].element_size()):
        size = t.numel() * t.element_size()
        if size > budget:
            raise ValueError(f"{name} alone is {size / MIB:.1f} MiB, over the {max_file_bytes / MIB:.0f} MiB file limit")
        for i, used in enumerate(sizes):  # first fit, largest first
            if used + size <= budget:
                shards[i][name] = t
                sizes[i] += size
                break
        else:
            shards.append({name: t})
            sizes.append(size)
    if len(shards) + 1 > max_files:
        raise ValueError(f"the state needs {len(shards)} weight files plus {RUN_JSON}, over {max_files}: pack as "
                         f"{'bfloat16' if dtype == 'float32' else dtype} without --optimizer")
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for i, shard in enumerate(shards, 1):
        name = f"state-{i:02d}-of-{len(shards):02d}.safetensors"
        save_file(shard, str(out / name))
        names.append(name)
    meta = {k: v for k, v in state.items() if k not in ("model", "optimizer", "rng", "torch_rng")}
    meta.update(
        format=1, dtype=dtype, shards=names, optimizer=opt_meta,
        rng=_jsonable(state["rng"]), torch_rng=base64.b64encode(state["torch_rng"].numpy().tobytes()).decode(),
        log=(run / "train.log").read_text(encoding="utf-8") if (run / "train.log").is_file() else "",
    )
    (out / RUN_JSON).write_text(json.dumps(meta), encoding="utf-8")
    files = [out / n for n in names] + [out / RUN_JSON]
    too_big = [f for f in files if f.stat().st_size > max_file_bytes]
    if too_big:
        raise ValueError(f"{too_big[0].name} is {too_big[0].stat().st_size / MIB:.1f} MiB, over the limit")
    return files


def unpack(packed: str | Path, run: str | Path) -> Path:
    """Rebuild ``run/state.pt`` (and ``train.log``) from :func:`pack`'s files; returns the state path.

    The weights come back in float32; without packed optimizer moments the state has none and
    training resumes with fresh ones.
    """
    packed, run = Path(packed), Path(run)
    meta = json.loads((packed / RUN_JSON).read_text(encoding="utf-8"))
    tensors: dict[str, torch.Tensor] = {}
    for name in meta.pop("shards"):
        tensors.update(load_file(str(packed / name)))
    model = {k.removeprefix("model/"): (v.float() if v.is_floating_point() else v)
             for k, v in tensors.items() if k.startswith("model/")}
    opt_meta = meta.pop("optimizer")
    optimizer = None
    if opt_meta is not None:
        state: dict[int, dict[str, Any]] = {}
        for pid, scalars in opt_meta["scalars"].items():
            state[int(pid)] = dict(scalars)
        for k, v in tensors.items():
            if k.startswith("optimizer/"):
                _, pid, name = k.split("/", 2)
                state.setdefault(int(pid), {})[name] = v
        optimizer = {"state": state, "param_groups": opt_meta["param_groups"]}
    rng = _tuples(meta.pop("rng"))
    torch_rng = torch.frombuffer(bytearray(base64.b64decode(meta.pop("torch_rng"))), dtype=torch.uint8).clone()
    log = meta.pop("log")
    for key in ("format", "dtype"):
        meta.pop(key)
    run.mkdir(parents=True, exist_ok=True)
    full = {**meta, "model": model, "optimizer": optimizer, "rng": rng, "torch_rng": torch_rng}
    tmp = run / "state.pt.tmp"
    torch.save(full, tmp)
    tmp.replace(run / "state.pt")
    if log and not (run / "train.log").is_file():
        (run / "train.log").write_text(log, encoding="utf-8")
    return run / "state.pt"


def _jsonable(value: Any) -> Any:
    return [_jsonable(v) for v in value] if isinstance(value, (tuple, list)) else value


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value
