#!/usr/bin/env bash
# lmms-eval in a venv of its own, with FaceTrack-MM installed into it: `lmms-eval --model facetrack` is registered by
# the facetrack-mm package (entry point `lmms_eval.models`), and the fec_bench task scores with its TEM and caption
# metrics. lmms-eval asks for packages this project's .venv does not carry (wandb, timm, torchvision, ...), so it
# gets its own environment. Every step is here; lmms_eval_tasks/fec_bench/README.md says why each one is needed.
#   bash lmms_eval_tasks/setup_lmms_eval_venv.sh      # makes .venv/lmms-eval (or $LMMS_EVAL_VENV)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${LMMS_EVAL_VENV:-.venv/lmms-eval}"
PYTHON="${PYTHON:-python3}"

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip_install() { "$VENV/bin/python" -m pip install --disable-pip-version-check -q "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
# 1. lmms-eval and FaceTrack-MM (with the metrics' extras), torch pinned: 2.13.0 is the CPU wheel on this kind of
#    machine; unpinned, lmms-eval's `torch>=2.1` pulls a multi-GB CUDA build.
pip_install "torch==${TORCH_VERSION:-2.13.0}" "lmms-eval==0.7.3" -e ".[all]"
# 2. The face detector, tracker and TEM's sentence model, whose metadata asks for what we do not use (as in
#    scripts/setup.sh).
pip_install --no-deps -r requirements-nodeps.txt
# 3. lmms-eval 0.7.3 imports filelock._api, which filelock 3.21+ no longer has. (pip then warns that virtualenv,
#    which pre-commit pulls in, wants a newer filelock: nothing here runs virtualenv.)
pip_install "filelock<3.21" 2> >(grep -v "dependency resolver\|virtualenv" >&2)
# 4. lmms-eval requires torchvision, and pip takes PyPI's, which is built against another torch than the CPU wheel
#    and fails on import ("operator torchvision::nms does not exist"); lmms-eval's CLI, this task and the facetrack
#    model do not use it, and transformers imports it whenever it is installed: remove it.
"$VENV/bin/python" -m pip uninstall -y -q torchvision
touch "$VENV/.installed"
echo "lmms-eval environment ready in $VENV: $VENV/bin/lmms-eval eval --model facetrack ..."
