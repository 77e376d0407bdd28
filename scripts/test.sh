#!/usr/bin/env bash
# The whole test suite: set up, lint (ruff), type-check (mypy --strict src), then pytest.
# Extra arguments go to pytest.
#
#   scripts/test.sh            everything (what landing and CI run)
#   scripts/test.sh --quick    the fast loop while working: ruff, then the unit tests only
#                              (no test marked integration, slow or reliability), under a minute
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
if [ "${1:-}" = "--quick" ]; then
  quick=1
  shift
fi
scripts/setup.sh
echo "== ruff"; .venv/bin/ruff check src tests bench
if [ "$quick" = 1 ]; then
  echo "== pytest (quick: not integration, slow or reliability)"
  exec .venv/bin/python -m pytest -q -m "not integration and not slow and not reliability" "$@"
fi
echo "== mypy"; .venv/bin/mypy --strict src
echo "== pytest"; .venv/bin/python -m pytest -q "$@"
