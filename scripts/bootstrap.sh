#!/usr/bin/env bash
# Set up shiti in ./.venv on a fresh machine.
#   scripts/bootstrap.sh          runtime only (enough for `shiti demo`): onnxruntime, no torch
#   scripts/bootstrap.sh --test   plus training/conversion (torch, the `train` extra), test tools
#                                 and the services the tests use (PostgreSQL, Chromium and iproute2
#                                 from Debian's packages, when root)
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

if [ "$want_test" = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  need=()
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  # A CJK font so dashboard screenshots show Chinese text, not boxes.
  [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)
  # `ip netns`: the multi-host test runs each host in its own network namespace.
  command -v ip >/dev/null 2>&1 || need+=(iproute2)
  # npm: the page's charting library (below); the browser tests check its charts.
  command -v npm >/dev/null 2>&1 || need+=(npm)
  if [ ${#need[@]} -gt 0 ]; then
    echo "bootstrap: apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
if [ "$want_test" = 1 ]; then
  # torch first and pinned: the local 2.13.0 CPU wheel; any other spec would pull a CUDA build.
  python -m pip install -q "torch==2.13.0"
  python -m pip install -q -e ".[train,test]"
  # The modelscope parity test runs the real modelscope pipeline in a subprocess. modelscope
  # 1.40.2 imports transformers.onnx (gone in transformers 5) and datasets (which needs
  # huggingface_hub<2), so those two live in side folders put first on that subprocess's path.
  [ -d .venv/modelscope-tf4/transformers ] || \
    python -m pip install -q --target .venv/modelscope-tf4 "transformers==4.57.6"
  [ -d .venv/modelscope-extra/datasets ] || \
    python -m pip install -q --target .venv/modelscope-extra "datasets==4.8.4"
else
  python -m pip install -q -e .
fi
# The page's charting library, Apache ECharts, pinned in producer/static/vendor/package-lock.json:
# installed with npm beside the virtualenv, and only its one file copied where the page loads it.
vendor=producer/static/vendor
if ! cmp -s "$vendor/package-lock.json" .venv/page-vendor/package-lock.json 2>/dev/null || [ ! -s "$vendor/echarts.min.js" ]; then
  if command -v npm >/dev/null 2>&1; then
    rm -rf .venv/page-vendor && mkdir -p .venv/page-vendor
    cp "$vendor/package.json" "$vendor/package-lock.json" .venv/page-vendor/
    npm ci --prefix .venv/page-vendor --omit=dev --no-audit --no-fund --loglevel=error >/dev/null
    cp .venv/page-vendor/node_modules/echarts/dist/echarts.min.js "$vendor/echarts.min.js"
  else
    echo "bootstrap: no npm: the page's corpus view shows lists instead of charts"
  fi
fi
echo "bootstrap: ready ($(python -c 'import onnxruntime as o; print("onnxruntime", o.__version__)'))"
