#!/usr/bin/env bash
# Install ttsframe with every extra and contributed plugin into .venv, exactly as locked in
# requirements/constraints.txt, then run ruff and the tests. Arguments go to pytest.
#
#   bash scripts/test.sh                 # the locked set: what CI and every machine test
#   bash scripts/test.sh --latest        # the newest versions the index serves, in .venv-latest
#   bash scripts/test.sh --latest -x tests/test_bad_input.py
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
lock=(-c requirements/constraints.txt)
if [[ "${1:-}" == "--latest" ]]; then
    shift
    venv=.venv-latest
    lock=(--upgrade --upgrade-strategy eager)
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet "${lock[@]}" pip
# requirements/all.in: ttsframe with every extra, the contributed plugins, and torch 2.13.0
# (a torch 2.13.0 already in the venv, such as the CPU build from PyTorch's index, is kept;
# otherwise pip takes PyPI's, the CUDA build on Linux: see docs/install.md).
"$venv/bin/python" -m pip install --quiet "${lock[@]}" -r requirements/all.in
"$venv/bin/python" -m ruff check .
bash scripts/ensure-node-openai.sh  # the npm openai package (locked) for the Node SDK tests
bash scripts/ensure-chromium.sh  # Debian's chromium for the web page's browser tests
bash scripts/ensure-prometheus.sh  # tests/test_prometheus.py runs a real Prometheus
# In parallel, one worker per core; a test module stays on one worker (--dist loadfile), so
# its module-scoped servers start once. Later arguments win: -n 0 runs it serially.
"$venv/bin/python" -m pytest -n auto --dist loadfile "$@"
# The Ray cluster tests, in a network namespace with only loopback (skipped above).
PYTHON="$venv/bin/python" bash scripts/test-cluster.sh
