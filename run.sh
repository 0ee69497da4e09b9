#!/usr/bin/env bash
# Set up what is missing, then either run the test suite (`./run.sh test [pytest args]`) or ngrender
# (`./run.sh render scenes/gigapixel.json --out gigapixel.png`, `./run.sh info`, ...).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
if [ "${1:-}" = "test" ]; then
    shift
    exec .venv/bin/python -m pytest "$@"
fi
exec .venv/bin/ngrender "$@"
