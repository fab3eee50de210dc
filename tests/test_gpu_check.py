"""scripts/gpu_check.sh: one clear SKIP line and exit 0 without CUDA; the same check runs end to end on CPU with
--allow-cpu (bf16, sdpa), on a tiny model and on a converted LLaVA-OneVision folder standing in for the 0.5B."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from facetrack.hub.convert_llava_onevision import convert_llava_onevision

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_without_cuda_the_script_skips_with_one_line_and_exit_0():
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", PYTHON=sys.executable)
    result = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "gpu_check.sh")], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "gpu_check: SKIP: no CUDA device (torch.cuda.is_available() is False); nothing checked"


def test_the_check_itself_runs_on_cpu(tiny_llava_onevision_dir, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("gpu_check", REPO_ROOT / "scripts" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    converted = convert_llava_onevision(tiny_llava_onevision_dir, tmp_path / "facetrack-llava-ov-tiny",
                                        face_tokens_per_frame=4, num_frames=3)
    assert gpu_check.main(["--allow-cpu", "--steps", "2", "--frames", "3", "--new-tokens", "3",
                           "--model-0p5b", str(converted)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("gpu_check: ")]
    assert len(lines) == 2, lines
    assert lines[0].startswith("gpu_check: tiny: cpu bfloat16 sdpa")
    assert lines[1].startswith("gpu_check: facetrack-llava-ov-tiny: cpu bfloat16 sdpa")
    for line in lines:
        assert "generate 3 tokens" in line and "losses [" in line and "peak memory n/a" in line


def test_in_a_clone_without_venv_the_script_says_to_run_make_setup(tmp_path):
    clone = tmp_path / "clone"
    (clone / "scripts").mkdir(parents=True)
    for name in ("gpu_check.sh", "gpu_check.py"):
        (clone / "scripts" / name).write_bytes((REPO_ROOT / "scripts" / name).read_bytes())
    env = {key: value for key, value in os.environ.items() if key != "PYTHON"}
    result = subprocess.run(["bash", str(clone / "scripts" / "gpu_check.sh")], capture_output=True, text=True, env=env,
                            timeout=60)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "make setup" in lines[0] and ".venv/bin/python" in lines[0], lines
