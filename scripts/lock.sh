#!/usr/bin/env bash
# Update the lock: resolve requirements/all.in (ttsframe with every extra, the contributed
# plugins, the tested torch) for every platform and every Python that pyproject.toml
# allows, into requirements/constraints.txt. Then run `bash scripts/test.sh` and commit the
# lock only when the suite passes.
#
#   bash scripts/lock.sh                 # after a dependency changed: pins move only as needed
#   bash scripts/lock.sh --upgrade       # newest versions of everything
#   bash scripts/lock.sh -P msgspec      # extra arguments go to uv: here, upgrade one package
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-lock
.venv-lock/bin/python -m pip install --quiet "uv>=0.9,<1"
# --universal: one file whose markers cover Linux, macOS and Windows; the project itself
# and its contributed plugins are not pinned (they are installed from this checkout).
.venv-lock/bin/uv pip compile requirements/all.in \
    --universal --python-version 3.11 \
    --no-emit-package ttsframe --no-emit-package ttsframe-chattext \
    --no-emit-package ttsframe-espeak --no-emit-package ttsframe-xtts-api \
    --no-emit-package ttsframe-alltalk-api \
    --custom-compile-command "bash scripts/lock.sh" \
    --output-file requirements/constraints.txt "$@"
