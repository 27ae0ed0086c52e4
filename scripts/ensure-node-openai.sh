#!/usr/bin/env bash
# The official OpenAI SDK for Node, for tests/test_streaming.py's Node SDK tests, installed
# from tests/node/package-lock.json (npm ci: exactly the locked versions) into
# tests/node/node_modules. Without node and npm nothing is installed and those tests skip.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "ensure-node-openai: node/npm not found; the Node SDK tests will be skipped" >&2
    exit 0
fi
npm ci --prefix tests/node --no-audit --no-fund --silent
