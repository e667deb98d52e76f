#!/usr/bin/env bash
# The 12-layer teacher (issue 28) in one short stretch on a lent GPU: all 12 layers of the shared
# e5-small encoder fine-tuned on the whole training mix (the model card's stage-5 weights) with
# bf16 and large batches, scored on the dev splits, and the run packed into at most eight files of
# at most 16 MiB (`shiti model pack`), so it comes back from the machine and resumes anywhere:
#   shiti model unpack OUT/packed --out ../runs/teacher && shiti model train ... --out ../runs/teacher --resume
#
#   scripts/train_accelerated.sh OUT [--device cuda] [--minutes 8] [--epochs 3] [--batch-tokens 32768]
#                                    [--init DIR] [--data DIR] [--resume PACKED] [--tiny]
# --tiny: a few steps on 200 sentences per file with the CPU (what the test command runs).
# Needs the `train` extra (torch); run it from the repository root.
set -euo pipefail
OUT=${1:?usage: scripts/train_accelerated.sh OUT [options]}
shift
DEVICE=cuda MINUTES=8 EPOCHS=3 BATCH=32768 LR=1e-4 HEAD_LR=1e-3 WARMUP=200 EVAL=400 CKPT=200
INIT=../shared/pretrained/e5-small-zh21128 DATA=../shared/data RESUME="" TINY=0 THREADS=2
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --minutes) MINUTES=$2; shift 2 ;;
    --epochs) EPOCHS=$2; shift 2 ;;
    --batch-tokens) BATCH=$2; shift 2 ;;
    --init) INIT=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --resume) RESUME=$2; shift 2 ;;
    --tiny) TINY=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
PY=${PYTHON:-python}
mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$PY" scripts/dev_splits.py --data "$DATA" --out "$WORK/data" > "$OUT/splits.log"
R=$WORK/data
TRAIN=("$R/msra-train.txt:1.0" "$R/pd-all.txt:0.5" "$DATA/weibo/train.txt:4" "$DATA/resume/train.txt:1.5"
       "$R/cluener-train.txt:1.5")
DEV=("$R/msra-dev.txt" "$DATA/weibo/dev.txt" "$DATA/resume/dev.txt" "$R/cluener-dev.txt")
if [ "$TINY" = 1 ]; then
  # A smoke run of the same steps: 200 sentences per file, a couple of small batches, the CPU.
  for f in "${TRAIN[@]%%:*}" "${DEV[@]}"; do
    awk -v RS= -v ORS='\n\n' 'NR <= 200' "$f" > "$f.tiny"
  done
  TRAIN=("${TRAIN[@]/.txt:/.txt.tiny:}")
  DEV=("${DEV[@]/%/.tiny}")
  DEVICE=cpu EPOCHS=0.05 BATCH=2048 EVAL=4 CKPT=2 WARMUP=2
fi
args=()
for t in "${TRAIN[@]}"; do args+=(--train "$t"); done
for d in "${DEV[@]}"; do args+=(--dev "$d"); done
RUN=$WORK/run
resume=()
if [ -n "$RESUME" ]; then
  "$PY" -m producer.cli.main model unpack "$RESUME" --out "$RUN"
  resume=(--resume)
fi
bf16=(--bf16)
[ "$DEVICE" = cpu ] && bf16=()
"$PY" -m producer.cli.main model train --init "$INIT" "${args[@]}" --out "$RUN" --device "$DEVICE" "${bf16[@]}" \
  --epochs "$EPOCHS" --lr "$LR" --head-lr "$HEAD_LR" --warmup "$WARMUP" --batch-tokens "$BATCH" \
  --eval-every "$EVAL" --ckpt-every "$CKPT" --threads "$THREADS" --max-seconds "$((MINUTES * 60))" \
  "${resume[@]}" | tee "$OUT/train.json"
cp "$RUN/train.log" "$OUT/train.log" 2>/dev/null || true
evals=()
for d in "${DEV[@]}"; do evals+=(--data "$d"); done
"$PY" -m producer.cli.main model evaluate --model "$RUN/best" "${evals[@]}" --fp32 --threads "$THREADS" --json \
  > "$OUT/dev.json"
"$PY" -m producer.cli.main model pack "$RUN" --out "$OUT/packed"
echo "packed run in $OUT/packed; dev scores of its best checkpoint in $OUT/dev.json"
