#!/usr/bin/env bash
# The whole test suite: set up, lint (ruff), type-check (mypy --strict src), then pytest.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== ruff"; .venv/bin/ruff check src tests bench
echo "== mypy"; .venv/bin/mypy --strict src
echo "== pytest"; .venv/bin/python -m pytest -q "$@"
