"""A model source that cannot be loaded is one line at once (facetrack.hub.sources): a local folder that does not
exist, a Hub id while the Hub cannot be reached or HF_HUB_OFFLINE is set; a cached Hub repo loads from the cache.
Checked where users meet it: `facetrack convert llava-onevision`, `facetrack describe --model`, TEM's nli_model.

The unreachable Hub is a closed port on this machine (HF_ENDPOINT=http://127.0.0.1:9): refused at once, as a machine
without network refuses a DNS lookup; the cache is a fresh HF_HOME per test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from facetrack.commands.cli import main
from facetrack.evaluation.tem.metric import load_tem_metric
from facetrack.hub.sources import ModelSourceError, check_model_source

UNREACHABLE_HUB = "http://127.0.0.1:9"


def facetrack_cli(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("HF_")}
    environment.update(HF_HOME=str(home), HF_ENDPOINT=UNREACHABLE_HUB, **env)
    return subprocess.run([sys.executable, "-m", "facetrack", *args], capture_output=True, text=True, timeout=120,
                          env=environment, cwd=home)


def one_error_line(result: subprocess.CompletedProcess, command: str) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    return only_error_line(result.stderr, command)


def only_error_line(stderr: str, command: str) -> str:
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith(f"facetrack {command}: error:")]
    assert len(errors) == 1, stderr[-2000:]
    return errors[0]


@pytest.fixture
def online(monkeypatch):
    """This process as on a machine where HF_HUB_OFFLINE is not set (the test session sets it)."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def cache_as_hub_repo(folder: Path, home: Path, repo_id: str) -> None:
    """`folder`'s files laid out as huggingface_hub's cache holds a downloaded repo."""
    repo = home / "hub" / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(folder, snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(snapshot.name)


def test_convert_from_a_folder_that_does_not_exist(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["convert", "llava-onevision", "./models/llava-ov", "out"]) == 2
    assert "'./models/llava-ov': no such folder" in only_error_line(capsys.readouterr().err, "convert")
    assert not (tmp_path / "out").exists()


def test_convert_from_the_hub_without_network_says_the_hub_cannot_be_reached(tmp_path):
    result = facetrack_cli("convert", "llava-onevision", "llava-hf/llava-onevision-qwen2-0.5b-ov-hf", "out",
                           home=tmp_path)
    line = one_error_line(result, "convert")
    assert "is not a local folder, and the Hugging Face Hub (http://127.0.0.1:9) cannot be reached" in line
    assert "None" not in line and not (tmp_path / "out").exists()


def test_convert_with_hf_hub_offline_and_nothing_cached(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["convert", "llava-onevision", "llava-hf/llava-onevision-qwen2-0.5b-ov-hf", "out"]) == 2
    line = only_error_line(capsys.readouterr().err, "convert")
    assert "HF_HUB_OFFLINE is set and the Hub repo is not in the Hugging Face cache" in line


def test_convert_from_a_cached_hub_repo_works_without_network(tmp_path, tiny_llava_onevision_dir):
    cache_as_hub_repo(tiny_llava_onevision_dir, tmp_path, "llava-hf/llava-onevision-tiny")
    result = facetrack_cli("convert", "llava-onevision", "llava-hf/llava-onevision-tiny", "out", "--face-tokens", "4",
                           home=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "out" / "config.json").is_file()
    assert "base_model:\n- llava-hf/llava-onevision-tiny" in (tmp_path / "out" / "README.md").read_text()


def test_describe_with_a_model_folder_that_does_not_exist(media_dir, capsys):
    assert main(["describe", str(media_dir / "single_face.mp4"), "--model", "/no/such/model"]) == 2
    assert "model '/no/such/model': no such folder" in only_error_line(capsys.readouterr().err, "describe")


def test_tem_nli_model_that_cannot_be_loaded(monkeypatch, online):
    tem = load_tem_metric()
    arguments = {"predictions": ["She smiles."], "references": ["She smiles."], "relation": "nli"}
    with pytest.raises(ModelSourceError, match="TEM: nli_model '/no/such/nli': no such folder"):
        tem.compute(**arguments, nli_model="/no/such/nli")
    monkeypatch.setattr("facetrack.hub.sources.hub_problem", lambda: "[Errno -2] Name or service not known")
    with pytest.raises(OSError, match="'cross-encoder/nli-deberta-v3-small' is not a local folder, and the Hugging "
                                      "Face Hub .* cannot be reached"):
        tem.compute(**arguments, nli_model="cross-encoder/nli-deberta-v3-small")


def test_a_local_folder_needs_no_hub(tmp_path, monkeypatch):
    monkeypatch.setattr("facetrack.hub.sources.hub_problem", lambda: pytest.fail("the Hub was asked"))
    assert check_model_source(tmp_path) == {}
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelSourceError, match="is a file, not a model folder"):
        check_model_source(tmp_path / "model.safetensors")
