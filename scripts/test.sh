#!/usr/bin/env bash
# Install ttsframe with every extra and contributed plugin into .venv, then run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# torch 2.13.0 is the CPU build the suite is tested with; other versions work too.
.venv/bin/python -m pip install --quiet torch==2.13.0 -e '.[dia,dev]' \
    $(find plugins_contrib -mindepth 2 -maxdepth 2 -name pyproject.toml -printf '-e %h ')
scripts/ensure-node-openai.sh  # the npm openai package for the Node SDK tests
.venv/bin/python -m ruff check .
.venv/bin/python -m pytest "$@"
