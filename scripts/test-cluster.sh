#!/bin/sh
# The Ray cluster tests (tests/test_cluster_ray.py), inside a private network namespace
# whose only interface is loopback: Ray then binds 127.0.0.1, never the machine's
# external address. Needs root (unshare -n) and the `ray` extra; skipped without Ray.
set -e
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
if ! "$PY" -c "import ray" 2>/dev/null; then
    echo "test-cluster: ray is not installed (pip install -e '.[ray]'); skipping"
    exit 0
fi
exec unshare -n sh -c "ip link set lo up && $PY -m pytest -q -p no:cacheprovider tests/test_cluster_ray.py $*"
