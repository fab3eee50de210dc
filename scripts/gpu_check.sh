#!/usr/bin/env bash
# One short CUDA check: bf16 forward + generate + 5 training steps with sdpa attention, on a tiny FaceTrack-MM and
# on the converted LLaVA-OneVision 0.5B when models/facetrack-llava-ov-0.5b exists; prints the figures.
# On a machine without CUDA it prints one SKIP line and exits 0.
#   bash scripts/gpu_check.sh [--model-0p5b FOLDER] [--steps N] [--frames N]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
exec "$PY" scripts/gpu_check.py "$@"
