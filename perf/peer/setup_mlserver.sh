#!/usr/bin/env bash
# Create the peer server's own environment (MLServer + its LightGBM runtime, and NVIDIA's tritonclient as a
# third-party V2 client for perf/peer/v2_client_check.py) under results/peer-venv.
# It is kept apart from .venv so the peer's pins (fastapi, uvicorn, grpcio, ...) never touch the suite's.
# Usage: bash perf/peer/setup_mlserver.sh [python3.11]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PY="${1:-python3.11}"
VENV="$ROOT/results/peer-venv"
if [ -x "$VENV/bin/mlserver" ]; then
  echo "peer venv ready: $VENV"; exit 0
fi
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  "mlserver>=1.6,<1.8" "mlserver-lightgbm>=1.6,<1.8" "tritonclient[http]>=2.40"
"$VENV/bin/mlserver" --version
echo "peer venv ready: $VENV"
