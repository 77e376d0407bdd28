#!/usr/bin/env bash
# The whole test suite: set up, lint (ruff), type-check (mypy --strict src), then pytest.
# Extra arguments go to pytest.
#
#   scripts/test.sh            everything (what landing and CI run)
#   scripts/test.sh --quick    the fast loop while working: ruff, then the unit tests only
#                              (no test marked integration, slow or reliability), under a minute
#
# The full run spreads the test files over TEST_WORKERS processes (pytest-xdist, default
# 2: most of the suite waits on real processes, sockets and ticks, not on a core); a file's
# tests stay together in one worker (--dist loadfile), so module fixtures start once.
# TEST_WORKERS=0 runs everything in this one process.
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
echo "== pytest"
.venv/bin/python -m pytest -q -n "${TEST_WORKERS:-2}" --dist loadfile "$@"
