#!/usr/bin/env bash
# Run the whole test suite (unit, component, model, integration on real redis-server, celery
# worker processes, SQLite and PostgreSQL, API and browser). Tests start the services they need.
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
mkdir -p test-artifacts
# The import contracts first (pyproject.toml [tool.importlinter]): a back-arrow fails fast.
lint-imports --no-cache
# Types of the service boundary ([tool.mypy]: strict on storage/ and producer/).
mypy
exec python -m pytest -q -p no:cacheprovider --durations=15 "$@"
