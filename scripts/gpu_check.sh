#!/usr/bin/env bash
# One short CUDA check: bf16 forward + generate + 5 training steps with sdpa attention, on a tiny FaceTrack-MM and
# on the converted LLaVA-OneVision 0.5B when models/facetrack-llava-ov-0.5b exists; prints the figures.
# On a machine without CUDA it prints one SKIP line and exits 0.
#   bash scripts/gpu_check.sh [--model-0p5b FOLDER] [--steps N] [--frames N]
# It runs with .venv/bin/python (made by `make setup`), or with $PYTHON when set.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
if [ ! -x "$PY" ]; then
    # Never another Python: one without torch and facetrack would fail with a traceback far from the cause.
    echo "gpu_check: error: no Python environment at $PY: run \`make setup\` first (or set PYTHON to a Python with facetrack installed)" >&2
    exit 2
fi
exec "$PY" scripts/gpu_check.py "$@"
