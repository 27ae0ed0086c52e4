#!/usr/bin/env bash
# Check that the lower bounds in pyproject.toml (and the contributed plugins') are honest:
# resolve every direct dependency to the lowest version its bound allows (their own
# dependencies as new as those allow), install that set into .venv-lowest and run the tests.
# Arguments go to pytest (default: the whole suite but the slow fuzz and load runs).
#
#   bash scripts/check-lower-bounds.sh
#   bash scripts/check-lower-bounds.sh -x tests/test_bad_input.py
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-lowest
.venv-lowest/bin/python -m pip install --quiet "uv>=0.9,<1"
lowest=$(mktemp)
.venv-lowest/bin/uv pip compile requirements/all.in --quiet \
    --resolution lowest-direct --python-version 3.11 \
    --no-emit-package ttsframe --no-emit-package ttsframe-chattext \
    --no-emit-package ttsframe-espeak --no-emit-package ttsframe-xtts-api \
    --output-file "$lowest"
.venv-lowest/bin/python -m pip install --quiet -c "$lowest" -r requirements/all.in
echo "lowest direct versions:"
.venv-lowest/bin/python -m pip list --format=freeze | grep -i -E \
    '^(pluggy|litestar|uvicorn|msgspec|anyio|numpy|soundfile|soxr|av|tomli.w|torch|transformers|huggingface.hub|pytest|httpx|openai|schemathesis|espeakng.loader)=='
if [[ $# -eq 0 ]]; then
    set -- -q --deselect tests/test_fuzz_schema.py --deselect tests/test_load.py
fi
.venv-lowest/bin/python -m pytest -p no:cacheprovider "$@"
