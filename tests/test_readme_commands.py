"""The README's usage commands, run in order as a new user runs them, in a copy of the repository.

Every shell command of the README's "Usage" section (its ```bash blocks) is either run or listed in NOT_RUN with
the reason; what a user would change (their video, their annotations, their Hub ids) is changed by the explicit
SUBSTITUTIONS below, each with its reason; both lists must match the README, so a command added there is run here
(or explained) too. The Python example of "Caption a video" (including its streamers) runs as written against a
tiny model, with the same kind of explicit substitutions.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
VIDEO = "tests/media/WolfgangLanger_Pexels.mp4"  # 19.7 s, one woman: has a face at 4.5 s inside the README's box

# (README text, what runs instead, why). Applied in this order to every command.
SUBSTITUTIONS = [
    ("video.mp4", VIDEO, "the user's video: a shipped clip"),
    ("--person 2", "--person 1", "the shipped clip's only person has id 1"),
    ("her_photo.jpg", "her_photo.jpg", "kept: the test writes her_photo.jpg, a frame of the clip at 4.5 s"),
    ("group.jpg", "tests/media/multi_face.jpg", "the user's photo: the shipped photo of five people"),
    ("llava-hf/llava-onevision-qwen2-7b-ov-hf", "{tiny_llava}", "16 GB from the Hub: a tiny LLaVA-OneVision folder"),
    ("llava-onevision SRC OUT", "llava-onevision {tiny_llava} models/facetrack-llava-ov-tiny", "the user's SRC, OUT"),
    ("--face-tokens 16 --global-tokens 81", "--face-tokens 4 --global-tokens 9",
     "the tiny stand-in's patch grid is 5 x 5 (SigLIP-384's is 27 x 27)"),
    ("fda_train.json", "tests/media/annotations.json", "the user's annotations: the shipped clips' captions"),
    ("dfec_test.json", "tests/media/annotations.json", "the FEC-Bench annotations: the shipped clips' captions"),
    ("/data/fda", "tests/media", "the user's video folder: the shipped clips"),
    ("--videos /data/raw_videos", "--videos tests/media", "the user's unlabelled videos: the shipped clips"),
    ("--clips-per-video 4", "--clips-per-video 1", "one clip per shipped video is enough to show the path"),
    ("--num-proc 8", "--num-proc 1", "a 2-core machine"),
    (" [--push user/fda]", "", "optional, and needs a Hub account"),
    ("--output_dir runs/tiny", "--output_dir runs/tiny --max_steps 2", "the recipe's 50 steps take minutes"),
    ("path/to/model", "{tiny_model}", "the user's model: a tiny FaceTrack-MM folder"),
    ("--model path/to/facetrack-model", "--model runs/tiny --max-new-tokens 24",
     "the model trained above; a random tiny model writes its 256 tokens slowly"),
    ("--predictions predictions.jsonl", "--predictions results/predictions.jsonl",
     "the predictions the command before wrote"),
]
NOT_RUN = {
    "python train_sft.py --config single_gpu_0p5b":
        "needs a GPU and models/facetrack-llava-ov-0.5b converted from the Hub (scripts/gpu_check.sh on a GPU)",
    "accelerate launch --config_file facetrack/training/recipes/accelerate/deepspeed_zero3.yaml train_sft.py "
    "--config paper_7b": "needs 8 GPUs and the converted 7B (tests/test_recipes.py checks the recipes)",
    "facetrack eval --model llava-hf/llava-onevision-qwen2-7b-ov-hf --annotations dfec_test.json --video-root "
    "/data/fda --out results-ov/": "downloads LLaVA-OneVision-7B from the Hub (tests/test_fec_bench.py runs other "
                                  "models on tiny checkpoints)",
    "facetrack eval --model gpt-4o --api-base-url https://api.openai.com/v1 --annotations dfec_test.json "
    "--video-root /data/fda --out results-gpt4o/": "needs an OpenAI API key (tests/test_fec_bench.py uses a local "
                                                  "OpenAI-compatible server)",
    "FEC_BENCH_VIDEO_ROOT=/data/fda .venv/lmms-eval/bin/lmms-eval --model facetrack --model_args "
    "pretrained=path/to/facetrack-model --tasks fec_bench --include_path lmms_eval_tasks/fec_bench":
        "needs lmms-eval's own venv (tests/test_lmms_eval_task.py runs it there)",
    "facetrack dataset build --videos /data/raw_videos --out data/auto --rewrite-with Qwen/Qwen2.5-7B-Instruct "
    "--rewrite-base-url http://localhost:8000/v1": "needs a chat model server (tests/test_dataset_engine.py rewrites "
                                                   "through a local OpenAI-compatible server)",
    'pip install "facetrack-mm[ray]"': "the package is installed from the checkout by scripts/setup.sh",
    "ray start --head --port=6379": "starts a cluster head that runs until stopped",
    "ray start --address=HEAD_IP:6379": "needs a second machine",
    "facetrack dataset build --videos /mnt/videos --out data/auto --engine ray --ray-address auto --num-proc 64":
        "needs the cluster above (tests/test_dataset_engine.py runs --engine ray on a local 2-CPU cluster)",
    "make demo": "starts a server that runs until stopped (tests/test_space.py drives the demo)",
    "FACETRACK_MODEL=quickstart_output/model/merged make demo": "starts a server (tests/test_space.py)",
}


def usage_commands() -> list[str]:
    """The shell commands of the README's Usage section, in order: ```bash blocks, continuation lines joined,
    comments dropped."""
    text = README.read_text()
    usage = text[text.index("\n## Usage\n") : text.index("\n## Tests and benchmarks\n")]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", usage, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command = re.sub(r"(^|\s+)#.*$", "", line).strip()
            if command:
                commands.append(re.sub(r"\s+", " ", command))
    return commands


def substituted(command: str, paths: dict[str, str]) -> str:
    for old, new, _ in SUBSTITUTIONS:
        command = command.replace(old, new.format(**paths))
    return command


def test_every_listed_command_and_substitution_is_in_the_readme():
    commands = usage_commands()
    assert set(NOT_RUN) <= set(commands), set(NOT_RUN) - set(commands)
    unused = [old for old, _, _ in SUBSTITUTIONS if not any(old in command for command in commands)]
    assert unused == []


def repository_copy(destination: Path) -> Path:
    """What a fresh clone holds: the tracked files (and new ones not yet committed), no .venv, no build output."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO_ROOT, capture_output=True,
                            text=True)
    if listed.returncode != 0:
        pytest.skip("needs a git checkout to copy")
    for name in listed.stdout.splitlines():
        source = REPO_ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def write_her_photo(work: Path) -> None:
    """her_photo.jpg: the woman of the clip, as a photo (a frame at 4.5 s)."""
    import cv2

    capture = cv2.VideoCapture(str(work / VIDEO))
    capture.set(cv2.CAP_PROP_POS_MSEC, 4500)
    ok, frame = capture.read()
    capture.release()
    assert ok
    cv2.imwrite(str(work / "her_photo.jpg"), frame)


@pytest.mark.slow
def test_the_readme_usage_commands_run_in_order(tmp_path, tiny_model_dir, tiny_llava_onevision_dir):
    work = repository_copy(tmp_path / "clone")
    write_her_photo(work)
    paths = {"tiny_model": str(tiny_model_dir), "tiny_llava": str(tiny_llava_onevision_dir)}
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                   "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    ran = []
    for command in usage_commands():
        if command in NOT_RUN:
            continue
        run = substituted(command, paths)
        result = subprocess.run(run, shell=True, cwd=work, env=environment, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, f"README command failed: {command}\nran: {run}\n{result.stderr[-3000:]}"
        assert "Traceback" not in result.stderr, f"{run}\n{result.stderr[-3000:]}"
        ran.append(command)
    assert len(ran) >= 15, ran

    # What those commands made.
    assert (work / "track.json").is_file() and (work / "overlay.mp4").is_file() and any((work / "crops").iterdir())
    assert (work / "models" / "facetrack-llava-ov-7b" / "config.json").is_file()
    assert any((work / "data" / "fda" / "data").iterdir()) and (work / "data" / "fda" / "README.md").is_file()
    card = (work / "runs" / "tiny" / "README.md").read_text()  # trained by the tiny CPU recipe
    assert "Warning: a demonstration model" in card and str(tmp_path) not in card
    assert (work / "results" / "predictions.jsonl").is_file() and (work / "results" / "results.json").is_file()


CAPTION_EXAMPLE_SUBSTITUTIONS = [
    ('"path/to/facetrack-model"', "{tiny_model!r}", "the user's model: a tiny FaceTrack-MM folder"),
    ('"video.mp4"', "{video!r}", "the user's video: a shipped clip"),
    ("max_new_tokens=256", "max_new_tokens=12", "a random tiny model: a few tokens show the path"),
    ('"max_new_tokens": 256', '"max_new_tokens": 12', "the same"),
]


def caption_examples() -> list[str]:
    text = README.read_text()
    section = text[text.index("### Caption a video") : text.index("#### Start from LLaVA-OneVision")]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_caption_example_and_its_streamers_run_as_written(tiny_model_dir, media_dir, capfd):
    """The README's Python caption example, then its streamer example (which continues it), in one namespace: the
    streamed caption is the caption generate() returns."""
    examples = caption_examples()
    assert len(examples) == 2 and "TextIteratorStreamer" in examples[1] and "TextStreamer(" in examples[1]
    code = "\n".join(examples)
    for old, new, _ in CAPTION_EXAMPLE_SUBSTITUTIONS:
        assert old in code, old
        code = code.replace(old, new.format(tiny_model=str(tiny_model_dir), video=str(media_dir / "single_face.mp4")))
    namespace: dict = {}
    exec(compile(code, "README.md (Caption a video)", "exec"), namespace)  # noqa: S102 - the README's own example
    printed = capfd.readouterr().out.splitlines()
    generated = namespace["processor"].decode(namespace["output"][0, namespace["inputs"]["input_ids"].shape[1]:],
                                              skip_special_tokens=True)
    assert generated.strip()
    assert printed[0] == generated  # print(processor.decode(...))
    assert printed[1] == generated  # TextStreamer: the same greedy caption, printed as it is generated
    assert namespace["caption"] == generated  # TextIteratorStreamer: the pieces make the same caption
