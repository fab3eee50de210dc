"""Instruction tuning with TRL's SFTTrainer on a tiny FaceTrack-MM: memorisation, resume, LoRA, the collator's
labels and its data path (bytes, tracks parsed once), freezing, recipes, bad input, kill -9 at every stage.

Over 400 lines on purpose: every test here shares the module's fixtures (a built dataset, a tiny model, one
interrupted-then-resumed run, an uninterrupted reference run), which take about a minute to make; split into
several files they would be made once per file."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from facetrack.training import run as training
from facetrack.training.checkpoints import checkpoint_problem, resolve_checkpoint
from facetrack.training.collator import FaceTrackDataCollator
from facetrack.training.config import (
    ModelArguments,
    ScriptArguments,
    TrainingSetupError,
    parse_arguments,
)
from facetrack.training.data import load_training_splits
from facetrack.training.parts import (
    FaceTrackSFTTrainer,
    lora_config,
    parameter_part,
    set_trainable_parts,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_RECIPE = REPO_ROOT / "facetrack" / "training" / "recipes" / "tiny_cpu.yaml"
# One torch thread: the tiny model is overhead-bound, and a thread pool thrashes on a shared 2-core machine.
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}

CAPTIONS = {
    "astronaut": "An astronaut smiles calmly while the camera slowly zooms in on her face.",
    "astronaut_pan": "The woman keeps a gentle smile and her eyes stay fixed on the camera.",
    "cat": "No human face is visible; a cat looks at the camera.",
    "coffee": "Only a cup of coffee is shown; nobody appears.",
}


def write_clip(path: Path, image, mode: str, num_frames: int = 8, size: int = 96) -> None:
    """A small synthetic clip from a still photo: a slow zoom or a pan (small = fast to decode at every step)."""
    import cv2

    height, width = image.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 8, (size, size))
    for t in range(num_frames):
        if mode == "zoom":
            side = int(min(height, width) / (1 + 0.03 * t))
            x0, y0 = (width - side) // 2, (height - side) // 2
        else:
            side = int(min(height, width) * 0.8)
            x0, y0 = int((width - side) * t / (num_frames - 1)), (height - side) // 2
        frame = cv2.resize(image[y0 : y0 + side, x0 : x0 + side], (size, size))
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    """Four small clips (two with a face, two without), built with `build_dataset` at 4 frames per clip."""
    from skimage import data

    from facetrack.data.build import build_dataset

    work = tmp_path_factory.mktemp("train_data")
    videos = work / "videos"
    videos.mkdir()
    write_clip(videos / "astronaut.mp4", data.astronaut(), "zoom")
    write_clip(videos / "astronaut_pan.mp4", data.astronaut(), "pan")
    write_clip(videos / "cat.mp4", data.chelsea(), "zoom")
    write_clip(videos / "coffee.mp4", data.coffee(), "pan")
    annotations = [{"id": name, "video": f"{name}.mp4", "caption": caption} for name, caption in CAPTIONS.items()]
    (work / "train.json").write_text(json.dumps(annotations))
    build_dataset(work / "train.json", videos, work / "dataset", split="train", num_frames=4)
    return work / "dataset"


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> Path:
    """A tiny random FaceTrack-MM Hub folder (512-token tokenizer), shared by the in-process runs."""
    from facetrack.hub.builders import build_tiny_model

    return Path(build_tiny_model(tmp_path_factory.mktemp("tiny_base") / "model", tokenizer="trained"))


def checkpoints_of(output_dir: Path) -> Path:
    """Where a run with this --output_dir keeps its checkpoints: beside the model folder, never inside it."""
    return output_dir.parent / f"{output_dir.name}-checkpoints"


def run_train_sft(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "train_sft.py"), "--config", str(TINY_RECIPE), *args],
        cwd=REPO_ROOT, env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=300,
    )


def logged_losses(stdout: str) -> list[float]:
    return [float(value) for value in re.findall(r"\{'loss': '([0-9.e+-]+)'", stdout)]


@pytest.fixture(scope="module")
def interrupted_then_resumed_run(tiny_dataset, tmp_path_factory) -> dict:
    """train_sft.py with the tiny recipe, stopped after its step-25 checkpoint, then resumed to step 50."""
    output_dir = tmp_path_factory.mktemp("runs") / "tiny"
    common = ["--dataset_name", str(tiny_dataset), "--output_dir", str(output_dir)]
    first = run_train_sft(*common, "--max_steps", "25")
    assert first.returncode == 0, first.stderr[-3000:]
    assert (checkpoints_of(output_dir) / "checkpoint-25" / "trainer_state.json").is_file()
    second = run_train_sft(*common, "--max_steps", "50", "--resume_from_checkpoint", "true")
    assert second.returncode == 0, second.stderr[-3000:]
    return {"output_dir": output_dir, "first": first, "second": second}


@pytest.mark.slow
def test_resume_continues_from_the_checkpoint(interrupted_then_resumed_run):
    output_dir = interrupted_then_resumed_run["output_dir"]
    second = interrupted_then_resumed_run["second"]
    # The resumed run logged only steps 30..50 (logging_steps=5), not 5..50: it started at step 25.
    assert len(logged_losses(second.stdout)) == 5
    # ... and from the checkpoint's weights: its first loss is far below the first run's first loss.
    assert logged_losses(second.stdout)[0] < logged_losses(interrupted_then_resumed_run["first"].stdout)[0] / 2
    state = json.loads((checkpoints_of(output_dir) / "checkpoint-50" / "trainer_state.json").read_text())
    assert state["global_step"] == 50
    assert [entry["step"] for entry in state["log_history"] if "loss" in entry] == list(range(5, 55, 5))


@pytest.mark.slow
def test_tiny_recipe_memorises_and_reloads_in_a_fresh_process(interrupted_then_resumed_run, tiny_dataset):
    output_dir = interrupted_then_resumed_run["output_dir"]
    state = json.loads((checkpoints_of(output_dir) / "checkpoint-50" / "trainer_state.json").read_text())
    losses = [entry["loss"] for entry in state["log_history"] if "loss" in entry]
    assert losses[-1] <= losses[0] / 2, losses

    # A complete Hub folder: code files, processor, and a model card recording the recipe.
    for name in ("config.json", "model.safetensors", "modeling_facetrack.py", "processing_facetrack.py",
                 "processor_config.json", "chat_template.jinja", "README.md"):
        assert (output_dir / name).is_file(), name
    assert not any(output_dir.rglob("checkpoint-*")), "checkpoints go beside the model folder, not inside it"
    card = (output_dir / "README.md").read_text()
    assert "learning_rate: 0.003" in card and "max_steps: 50" in card and "tiny_language_model: random" in card

    # Reload with trust_remote_code in a fresh process and decode greedily on each training video.
    script = f"""
import json
from datasets import Video, load_dataset
from transformers import AutoModelForImageTextToText, AutoProcessor
model = AutoModelForImageTextToText.from_pretrained({str(output_dir)!r}, trust_remote_code=True)
processor = AutoProcessor.from_pretrained({str(output_dir)!r}, trust_remote_code=True)
rows = load_dataset({str(tiny_dataset)!r}, split="train").cast_column("video", Video(decode=False))
answers = {{}}
for row in rows:
    prompt = processor.apply_chat_template(row["messages"][:1], tokenize=False, add_generation_prompt=True)
    path = {str(tiny_dataset.parent / "videos")!r} + "/" + row["video"]["path"]  # the clip the row embeds
    inputs = processor(text=[prompt], videos=[path], face_tracks=[json.loads(row["face_track"])])
    output = model.generate(**inputs, max_new_tokens=16, do_sample=False)
    answers[row["id"]] = processor.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
print("ANSWERS=" + json.dumps(answers))
"""
    result = subprocess.run([sys.executable, "-c", script], env=SUBPROCESS_ENV, capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    answers = json.loads(result.stdout.split("ANSWERS=")[1])
    for video_id, caption in CAPTIONS.items():
        answer = answers[video_id].strip()
        # The start of its own caption (16 tokens of a 512-token BPE are 3-6 words), not another clip's.
        assert len(answer.split()) >= 3 and caption.startswith(answer), (video_id, answer)


@pytest.fixture
def restore_torch_threads():
    """In-process runs apply the recipe's cpu_threads; later tests get the thread count back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------------------------- LoRA
def test_lora_trains_only_adapters_and_projectors_and_merges(tiny_dataset, tiny_base, tmp_path, restore_torch_threads):
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText, AutoProcessor

    output_dir = tmp_path / "lora"
    script_args, model_args, training_args = parse_arguments([
        "--config", str(TINY_RECIPE), "--dataset_name", str(tiny_dataset), "--output_dir", str(output_dir),
        "--model_name_or_path", str(tiny_base), "--use_peft", "true", "--max_steps", "4", "--warmup_steps", "0",
        "--save_strategy", "no", "--logging_steps", "1",
    ])
    result = training.run_training(script_args, model_args, training_args)
    assert result["final_dir"] == str(output_dir / "merged")
    assert (output_dir / "adapter_config.json").is_file() and (output_dir / "adapter_model.safetensors").is_file()

    base = AutoModelForImageTextToText.from_pretrained(tiny_base, trust_remote_code=True)
    base_state = {name: tensor.clone() for name, tensor in base.state_dict().items()}
    merged = AutoModelForImageTextToText.from_pretrained(output_dir / "merged", trust_remote_code=True)
    changed = {name for name, tensor in merged.state_dict().items() if not torch.equal(tensor, base_state[name])}
    lora_targets = re.compile(r"model\.language_model\.layers\.\d+\.(self_attn|mlp)\.\w+_proj\.weight")
    assert changed, "LoRA training changed nothing"
    for name in changed:
        is_projector = name.startswith(("model.video_projector.", "model.face_projector."))
        assert is_projector or lora_targets.fullmatch(name), name
    assert any(name.startswith("model.face_projector.") for name in changed)
    assert not any("vision_tower" in name or "embed_tokens" in name or "no_face" in name for name in changed)

    # base + adapter == merged, on a real batch.
    adapted = PeftModel.from_pretrained(base, output_dir).eval()
    processor = AutoProcessor.from_pretrained(tiny_base, trust_remote_code=True)
    train_rows, _ = load_training_splits(ScriptArguments(dataset_name=str(tiny_dataset)))
    batch = FaceTrackDataCollator(processor)([train_rows[0], train_rows[1]])
    batch.pop("labels")
    with torch.no_grad():
        adapted_logits = adapted(**batch).logits
        merged_logits = merged.eval()(**batch).logits
    assert torch.allclose(adapted_logits, merged_logits, atol=1e-4)


# ------------------------------------------------------------------------------------------------ collator, parts
@pytest.fixture(scope="module")
def tiny_processor_and_rows(tiny_dataset, tiny_base):
    model, processor = training.load_model_and_processor(str(tiny_base), ModelArguments())
    rows, _ = load_training_splits(ScriptArguments(dataset_name=str(tiny_dataset)))
    return model, processor, rows


def test_collator_labels_only_the_answer(tiny_processor_and_rows):
    _, processor, rows = tiny_processor_and_rows
    batch = FaceTrackDataCollator(processor)([rows[0], rows[2], rows[3]])
    assert batch["video_num_frames"].tolist() == [4, 4, 4]
    assert batch["face_mask"].view(3, 4).any(1).tolist() == [True, False, False]
    for index, row in enumerate([rows[0], rows[2], rows[3]]):
        labels = batch["labels"][index]
        assert processor.decode(labels[labels != -100]) == row["caption"] + "<|im_end|>\n"
        # Padding is on the right and never a target.
        assert (labels[batch["attention_mask"][index] == 0] == -100).all()
        assert batch["attention_mask"][index, 0] == 1


def test_collator_truncates_answers_and_refuses_to_cut_the_prompt(tiny_processor_and_rows):
    _, processor, rows = tiny_processor_and_rows
    full = FaceTrackDataCollator(processor)([rows[0]])
    prompt_length = int((full["labels"][0] == -100).sum())
    truncated = FaceTrackDataCollator(processor, max_length=prompt_length + 3)([rows[0]])
    assert truncated["input_ids"].shape[1] == prompt_length + 3
    assert int((truncated["labels"][0] != -100).sum()) == 3
    with pytest.raises(TrainingSetupError, match="max_length"):
        FaceTrackDataCollator(processor, max_length=prompt_length - 1)([rows[0]])


def test_collator_frame_subset_and_too_many_frames(tiny_processor_and_rows):
    _, processor, rows = tiny_processor_and_rows
    assert FaceTrackDataCollator(processor, num_frames=2)([rows[0]])["video_num_frames"].tolist() == [2]
    with pytest.raises(TrainingSetupError, match="rebuild the dataset with --num-frames 6"):
        FaceTrackDataCollator(processor, num_frames=6)([rows[0]])


def test_detected_faces_match_the_precomputed_track(tiny_processor_and_rows):
    """On-the-fly detection samples the same frames and finds the same face as the dataset build."""
    _, processor, rows = tiny_processor_and_rows
    precomputed = FaceTrackDataCollator(processor)([rows[0], rows[2]])
    detected = FaceTrackDataCollator(processor, face_source="detect")([rows[0], rows[2]])
    assert torch.equal(precomputed["face_mask"], detected["face_mask"])
    assert torch.equal(precomputed["pixel_values_videos"], detected["pixel_values_videos"])
    assert torch.allclose(precomputed["pixel_values_faces"], detected["pixel_values_faces"])


def test_collator_decodes_the_embedded_bytes_with_no_temporary_file(tiny_processor_and_rows, tiny_dataset, monkeypatch):
    """The batch is the processor's own on the clip files, though nothing is written to disk on the way."""
    import tempfile

    _, processor, rows = tiny_processor_and_rows
    assert type(processor).__module__.startswith("transformers_modules.")  # the model folder's copy (remote code)

    def no_temporary_files(*args, **kwargs):
        raise AssertionError("a temporary file was written")

    expected = processor(
        text=[FaceTrackDataCollator(processor)._texts(row["messages"])[0] for row in (rows[0], rows[2])],
        videos=[str(tiny_dataset.parent / "videos" / row["video"]["path"]) for row in (rows[0], rows[2])],
        face_tracks=[rows[0]["face_track"], rows[2]["face_track"]], padding=True, padding_side="right",
    )
    for name in ("mkstemp", "NamedTemporaryFile", "TemporaryFile", "mkdtemp"):
        monkeypatch.setattr(tempfile, name, no_temporary_files)
    batch = FaceTrackDataCollator(processor)([rows[0], rows[2]])
    for key in ("input_ids", "pixel_values_videos", "pixel_values_faces", "face_mask", "video_num_frames"):
        assert torch.equal(batch[key], expected[key]), key


def test_each_face_track_is_parsed_once(tiny_dataset, tiny_processor_and_rows, monkeypatch):
    """Loading the split parses (and checks) every track; reading rows and collating batches, epoch after epoch, never
    parses one again. A pickled copy (a spawned dataloader worker's) parses each row once itself."""
    import pickle

    from datasets import load_dataset

    _, processor, _ = tiny_processor_and_rows
    stored = load_dataset(str(tiny_dataset), split="train")["face_track"]  # (the two face-free clips' are equal)
    parsed = []
    real_loads = json.loads

    def counting_loads(text, *args, **kwargs):
        if text in set(stored):
            parsed.append(text)
        return real_loads(text, *args, **kwargs)

    monkeypatch.setattr(json, "loads", counting_loads)
    rows, _ = load_training_splits(ScriptArguments(dataset_name=str(tiny_dataset)))
    assert sorted(parsed) == sorted(stored)  # the check before training: each row once
    collator = FaceTrackDataCollator(processor, num_frames=2)
    for _ in range(3):  # three epochs
        collator([rows[index] for index in range(len(rows))])
    assert len(parsed) == len(stored)
    assert rows[1]["face_track"] == real_loads(load_dataset(str(tiny_dataset), split="train")[1]["face_track"])

    copy = pickle.loads(pickle.dumps(rows))
    assert [copy[index]["face_track"] for index in range(len(rows))] == [rows[i]["face_track"] for i in range(len(rows))]
    assert len(parsed) == 2 * len(stored)
    # The parquet's rows, videos included, are read where they are: no copy of the split is written.
    assert rows.cache_files == load_dataset(str(tiny_dataset), split="train").cache_files

    with pytest.raises(TrainingSetupError, match="not a parsed track: give the collator rows of"):
        collator([load_dataset(str(tiny_dataset), split="train").cast_column("video", rows.features["video"])[0]])


def test_a_stream_only_model_trains_on_stored_timelines_without_decoding(tiny_dataset, tmp_path, monkeypatch):
    """The collator hands each row's stored face track (with the measured timeline) to the processor of a model that
    reads expression tokens only: no video is decoded and nothing is measured; the loss reaches the projector."""
    import sys

    from facetrack.analysis import video_analysis
    from facetrack.analysis.video_analysis import read_face_track
    from facetrack.expressions import measure
    from facetrack.expressions.features import expression_features
    from facetrack.hub.builders import build_tiny_model
    from facetrack.video import decode

    rows, _ = load_training_splits(ScriptArguments(dataset_name=str(tiny_dataset)))
    reports = [read_face_track(rows[index]["face_track"]).expression_report for index in (0, 2)]
    if reports[0] is None:
        pytest.skip("the dataset was built without expressions (the expression models are not installed)")
    folder = build_tiny_model(tmp_path / "stream-only", tokenizer="trained", global_tokens_per_frame=0,
                              face_tokens_per_frame=0, expression_tokens_per_frame=2)
    model, processor = training.load_model_and_processor(str(folder), ModelArguments())
    counts = set_trainable_parts(model, ModelArguments())
    assert counts["vision"] == 0 and counts["projector"] == sum(
        p.numel() for n, p in model.named_parameters() if "expression" in n)

    def refuse(*args, **kwargs):
        raise AssertionError("training a stream-only model must not decode or measure")

    for module in (decode, video_analysis, sys.modules[type(processor.video_processor).__module__]):
        monkeypatch.setattr(module, "load_video", refuse)
    monkeypatch.setattr(measure.ExpressionAnalyzer, "__init__", refuse)
    batch = FaceTrackDataCollator(processor)([rows[0], rows[2]])
    assert not any(key.startswith(("pixel_values", "face_mask")) for key in batch)
    assert batch["video_num_frames"].tolist() == [4, 4]
    features = [expression_features(report) if report is not None else None for report in reports]
    assert torch.equal(batch["expression_features"][:4], torch.from_numpy(features[0][0]))
    assert batch["expression_mask"][:4].tolist() == features[0][1].tolist() and batch["expression_mask"][:4].any()
    assert not batch["expression_mask"][4:].any(), "the cat clip has no face: nothing measured"
    labels = batch["labels"][0]
    assert processor.decode(labels[labels != -100]) == rows[0]["caption"] + "<|im_end|>\n"
    model.train()
    model(**batch).loss.backward()
    assert model.get_parameter("model.expression_projector.linear_1.weight").grad.abs().sum() > 0


@pytest.fixture(scope="module")
def stream_only_dir(tmp_path_factory) -> Path:
    """A tiny model that reads one expression token per frame and nothing else (no timestamps), built once."""
    from facetrack.hub.builders import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("stream-only"), tokenizer="trained", global_tokens_per_frame=0,
                            face_tokens_per_frame=0, expression_tokens_per_frame=1, timestamps=False)


def measured_rows(dataset_dir: Path) -> list[dict]:
    """The dataset's training rows, each face track with the followed person's measured expressions (the test is
    skipped where the expression models are not installed and the build stored none)."""
    rows, _ = load_training_splits(ScriptArguments(dataset_name=str(dataset_dir)))
    if not rows[0]["face_track"].get("expressions"):
        pytest.skip("the dataset was built without expressions (the expression models are not installed)")
    return rows


def test_timeline_variants_train_on_montages_captioned_by_their_own_measurements(tiny_dataset, tiny_base,
                                                                                 stream_only_dir, monkeypatch):
    """With timeline variants each row is, at every visit, a montage of its stored timeline with its measured
    caption as the target: frames and captions vary, the same seed gives the same batches, nothing is decoded or
    measured; a model that reads pixels and a row without measurements are refused by name."""
    import sys

    from facetrack.analysis import video_analysis
    from facetrack.expressions import measure
    from facetrack.expressions.caption import MEASURED_LABEL
    from facetrack.training.collator import TimelineVariants
    from facetrack.video import decode

    rows = measured_rows(tiny_dataset)
    model, processor = training.load_model_and_processor(str(stream_only_dir), ModelArguments())
    assert processor.timestamp_template is None

    def refuse(*args, **kwargs):
        raise AssertionError("montages are cut from the stored timelines: nothing is decoded or measured")

    for module in (decode, video_analysis, sys.modules[type(processor.video_processor).__module__]):
        monkeypatch.setattr(module, "load_video", refuse)
    monkeypatch.setattr(measure.ExpressionAnalyzer, "__init__", refuse)

    def batches(seed: int) -> list[dict]:
        collator = FaceTrackDataCollator(processor, timeline_variants=TimelineVariants(seed=seed, frame_counts=(3, 5), max_seconds=None))
        return [collator([rows[0], rows[0]]) for _ in range(6)]

    first, again, other = batches(0), batches(0), batches(1)
    answers = set()
    for batch in first:
        assert set(batch["video_num_frames"].tolist()) <= {3, 5}
        assert batch["expression_features"].shape[0] == int(batch["video_num_frames"].sum())
        for labels in batch["labels"]:
            answer = processor.decode(labels[labels != -100])
            assert answer.startswith("This video shows") and MEASURED_LABEL not in answer
            answers.add(answer)
    assert len(answers) > 1, "the montages' captions vary"
    assert all(torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(a["expression_features"],
                                                                            b["expression_features"])
               for a, b in zip(first, again))
    assert [batch["expression_features"].tolist() for batch in first] != [
        batch["expression_features"].tolist() for batch in other], "another seed draws other montages"
    model.train()
    model(**first[0]).loss.backward()
    assert model.get_parameter("model.expression_projector.linear_1.weight").grad.abs().sum() > 0

    pixel_model, pixel_processor = training.load_model_and_processor(str(tiny_base), ModelArguments())
    with pytest.raises(TrainingSetupError, match="expression stream alone"):
        FaceTrackDataCollator(pixel_processor, timeline_variants=TimelineVariants())
    bare = {**rows[0], "id": "bare", "face_track": {**rows[0]["face_track"], "expressions": {}}}
    with pytest.raises(TrainingSetupError, match="row 'bare'.*no measured expressions"):
        FaceTrackDataCollator(processor, timeline_variants=TimelineVariants())([bare])


def test_montages_cut_to_no_face_and_measures_jittered_leave_the_rule_columns_and_captions(tiny_dataset, tiny_base,
                                                                                             stream_only_dir):
    """no_face_share: montages cut at their start or end to a stretch without the face (unmeasured frames, the
    "no expression" embedding), as title cards and cutaways are in real clips. measure_jitter: each video's raw
    measure columns get a gain and an offset; the rule columns (state / event / time), the unmeasured frames and
    the targets are those of the same batch without it."""
    from facetrack.training.collator import TimelineVariants

    rows = measured_rows(tiny_dataset)
    _, processor = training.load_model_and_processor(str(stream_only_dir), ModelArguments())
    variants = TimelineVariants(seed=0, frame_counts=(12,), max_seconds=None, no_face_share=1.0)
    gaps = []
    for _ in range(6):
        track, caption = variants(rows[0]["face_track"], rows[0]["id"])
        present = [frame["box"] is not None for frame in track["frames"]]
        gaps.append((present[0], present[-1]))
        missing = [index for index, on in enumerate(present) if not on]
        assert missing and (missing[0] == 0 or missing[-1] == len(present) - 1)  # a cut at the start or the end
        assert caption.startswith("This video shows")
    assert {False} < {first for first, _ in gaps} | {last for _, last in gaps}

    def batch(jitter: float) -> dict:
        collator = FaceTrackDataCollator(processor, measure_jitter=jitter, seed=3,
                                         timeline_variants=TimelineVariants(seed=1, frame_counts=(12,),
                                                                            no_face_share=0.5))
        return collator([rows[0], rows[1]])

    plain, jittered = batch(0.0), batch(0.5)
    assert torch.equal(plain["labels"], jittered["labels"]) and torch.equal(plain["input_ids"], jittered["input_ids"])
    columns = processor.expression_features["columns"]
    rule = torch.tensor([name.startswith(("state:", "event:", "time:")) for name in columns])
    measured = plain["expression_mask"]
    assert torch.equal(plain["expression_features"][:, rule], jittered["expression_features"][:, rule])
    assert torch.equal(plain["expression_features"][~measured], jittered["expression_features"][~measured])
    assert not torch.allclose(plain["expression_features"][measured][:, ~rule],
                              jittered["expression_features"][measured][:, ~rule])
    with pytest.raises(TrainingSetupError, match="measure_jitter must be >= 0"):
        FaceTrackDataCollator(processor, measure_jitter=-1.0)
    _, pixel_processor = training.load_model_and_processor(str(tiny_base), ModelArguments())
    with pytest.raises(TrainingSetupError, match="no expression stream"):
        FaceTrackDataCollator(pixel_processor, measure_jitter=0.5)
    with pytest.raises(TrainingSetupError, match="no-face share"):
        TimelineVariants(no_face_share=2.0)


def _made_up_track(seconds: float, smiling: tuple[float, float] | None = None,
                   eyes_closed: tuple[float, float] | None = None) -> dict:
    """A stored face track of one person, 10 frames a second, smiling (with a happy face) and with shut eyes in the
    given stretches of seconds."""
    from facetrack.expressions.measure import BLENDSHAPE_NAMES, ExpressionTimeline, FrameExpression
    from facetrack.expressions.report import report_from_timeline
    from facetrack.faces.track_result import FaceTrackResult

    times = np.round(np.arange(0.0, seconds, 0.1), 3)
    frames = []
    for index, t in enumerate(times):
        smile = smiling is not None and smiling[0] <= t < smiling[1]
        shut = eyes_closed is not None and eyes_closed[0] <= t < eyes_closed[1]
        shapes = [0.0] * len(BLENDSHAPE_NAMES)
        for side in ("mouthSmileLeft", "mouthSmileRight"):
            shapes[BLENDSHAPE_NAMES.index(side)] = 0.9 if smile else 0.0
        frames.append(FrameExpression(
            timestamp=float(t), frame_index=index, box=[10.0, 10.0, 40.0, 40.0], face_found=True, blendshapes=shapes,
            emotions=[0.0, 0.0, 0.0, 0.9 if smile else 0.0, 0.0, 0.0, 0.1 if smile else 1.0], yaw=0.0, pitch=0.0,
            roll=0.0, eye_open_left=0.05 if shut else 0.3, eye_open_right=0.05 if shut else 0.3, mouth_open=0.05,
            lip_corner_width=1.0, brow_height=0.43, brow_gap=0.48))
    track = FaceTrackResult.from_boxes([[10.0, 10.0, 40.0, 40.0]] * len(times), width=64, height=48,
                                       timestamps=times.tolist(), frame_indices=list(range(len(times))), score=0.9,
                                       reason="test")
    track.expressions = {track.person_id: report_from_timeline(ExpressionTimeline(frames=frames), track.person_id)}
    return track.to_dict()


def test_scripted_montages_put_the_clips_states_in_orders_no_clip_shows():
    """script_share: a montage made of stretches of frames picked by their rule state (any row's), each state
    different from the one before: from a clip that only breaks into a smile and one that only shuts its eyes come
    montages whose smile fades, or that start smiling; each caption is the montage's own measured caption."""
    from facetrack.expressions.caption import measured_caption_text
    from facetrack.expressions.report import ExpressionReport, report_from_timeline
    from facetrack.training.collator import TimelineVariants

    smile_later = _made_up_track(6.0, smiling=(3.0, 6.0))
    eyes_shut = _made_up_track(5.0, eyes_closed=(1.5, 3.5))
    variants = TimelineVariants(seed=0, frame_counts=(16,), script_share=1.0)
    variants.source(eyes_shut, "eyes")
    captions, kinds = [], []
    for draw in range(20):
        track, caption = variants(smile_later, "smile")
        report = ExpressionReport.from_dict(track["expressions"][str(track["person_id"])])
        assert len(report.timeline) == 16 and 1.2 <= report.timeline.timestamps[-1] <= 12.5
        assert caption == measured_caption_text(report_from_timeline(report.timeline, report.person_id).caption)
        captions.append(caption)
        kinds.append([event.kind for event in report.events])
    assert any("smile_end" in found for found in kinds)  # neither clip's smile ever fades
    assert any(caption.startswith("This video shows") and "At the beginning, the person is smiling" in caption
               for caption in captions)
    assert len(set(captions)) >= 8
    with pytest.raises(TrainingSetupError, match="script share"):
        TimelineVariants(script_share=-0.1)


def test_the_cpu_stream_recipe_trains_a_stream_only_model_with_full_batches(tiny_dataset, tmp_path,
                                                                           restore_torch_threads):
    """`--config cpu_expression_stream` (here over a tiny random LLM, 2 steps): a model without a vision tower,
    one expression token per frame, no timestamps and the caption's phase words before each phase's frames; the
    4-row split is repeated so every batch is full."""
    output_dir = tmp_path / "stream-run"
    script_args, model_args, training_args = parse_arguments([
        "--config", "cpu_expression_stream", "--dataset_name", str(tiny_dataset), "--output_dir", str(output_dir),
        "--tiny_language_model", "random", "--tiny_tokenizer", "trained", "--use_peft", "false",
        "--max_steps", "3", "--per_device_train_batch_size", "3", "--cpu_threads", "1", "--logging_steps", "1"])
    result = training.run_training(script_args, model_args, training_args)
    assert len(result["trainer"].train_dataset) >= 9
    from transformers import AutoConfig, AutoProcessor

    config = AutoConfig.from_pretrained(result["final_dir"], trust_remote_code=True)
    assert (config.global_tokens_per_frame, config.face_tokens_per_frame, config.expression_tokens_per_frame) == (
        0, 0, 1) and config.vision_config is None
    processor = AutoProcessor.from_pretrained(result["final_dir"], trust_remote_code=True)
    assert processor.timestamp_template is None and processor.phase_labels is True
    for bad, message in ((["--variant_frame_counts", "8,x"], "variant_frame_counts must be"),
                         (["--variant_part_counts", "0"], "variant_part_counts must be")):
        with pytest.raises(TrainingSetupError, match=message):
            parse_arguments(["--config", "cpu_expression_stream", *bad])


def test_trainable_parts_default_and_choices(tiny_base):
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(tiny_base, trust_remote_code=True)
    counts = set_trainable_parts(model, ModelArguments())
    assert counts["vision"] == 0 and counts["projector"] > 0 and counts["language_model"] > 0
    assert not any(p.requires_grad for n, p in model.named_parameters() if n.startswith("model.vision_tower."))
    counts = set_trainable_parts(model, ModelArguments(train_language_model=False, train_vision_tower=True))
    assert counts["language_model"] == 0 and counts["vision"] > 0
    with pytest.raises(TrainingSetupError, match="nothing to train"):
        set_trainable_parts(
            model, ModelArguments(train_language_model=False, train_projectors=False)
        )
    with pytest.raises(TrainingSetupError, match="LoRA adapts the LLM only"):
        lora_config(ModelArguments(use_peft=True, train_vision_tower=True))


def test_parts_are_found_under_peft_names_too(tiny_base):
    """The optimizer groups read the parts of a peft-wrapped model: adapters are the LLM's, the trained projector
    copies are projectors."""
    from peft import get_peft_model
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(tiny_base, trust_remote_code=True)
    model_args = ModelArguments(use_peft=True)
    plain = {name: parameter_part(name) for name, _ in model.named_parameters()}
    assert set(plain.values()) == {"vision", "projector", "language_model"}
    set_trainable_parts(model, model_args)
    wrapped = get_peft_model(model, lora_config(model_args))
    trained = {name: parameter_part(name) for name, p in wrapped.named_parameters() if p.requires_grad}
    assert {part for name, part in trained.items() if "lora_" in name} == {"language_model"}
    assert {part for name, part in trained.items() if "modules_to_save" in name} == {"projector"}
    assert set(trained.values()) == {"language_model", "projector"}
    with pytest.raises(TrainingSetupError, match="belongs to no known FaceTrack-MM part"):
        parameter_part("model.some_new_module.weight")


def test_projector_learning_rate_gets_its_own_group(tiny_processor_and_rows, tiny_dataset, tmp_path):
    model, processor, rows = tiny_processor_and_rows
    from trl import SFTConfig

    set_trainable_parts(model, ModelArguments())
    args = SFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, learning_rate=1e-4, report_to=[],
                     remove_unused_columns=False, dataset_kwargs={"skip_prepare_dataset": True})
    trainer = FaceTrackSFTTrainer(
        model=model, args=args, data_collator=FaceTrackDataCollator(processor), train_dataset=rows,
        processing_class=processor,
    )
    trainer.projector_lr = 5e-3
    optimizer = trainer.create_optimizer()
    projector_ids = {id(p) for n, p in model.named_parameters() if "projector" in n or "no_face" in n}
    for group in optimizer.param_groups:
        in_projector = {id(p) in projector_ids for p in group["params"]}
        assert len(in_projector) == 1  # groups never mix projector and other parameters
        assert group["lr"] == (5e-3 if in_projector.pop() else 1e-4)


def test_cpu_loss_is_trls_fused_loss(tiny_processor_and_rows, tmp_path):
    """On CPU the trainer uses the model's own loss (TRL's fused LM head scores every position there, a quarter of
    a CPU step): the same loss and the same gradients as TRL's."""
    from trl import SFTConfig, SFTTrainer

    model, processor, rows = tiny_processor_and_rows
    set_trainable_parts(model, ModelArguments())
    args = SFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to=[], remove_unused_columns=False,
                     dataset_kwargs={"skip_prepare_dataset": True})
    trainer = FaceTrackSFTTrainer(model=model, args=args, data_collator=FaceTrackDataCollator(processor),
                                  train_dataset=rows, processing_class=processor)
    batch = FaceTrackDataCollator(processor)([rows[0], rows[1]])
    assert (batch["labels"] == -100).any() and (batch["labels"] != -100).any()  # prompt and padding are not scored

    def loss_and_grads(compute_loss):
        model.zero_grad()
        loss = compute_loss(trainer, model, dict(batch))
        loss.backward()
        return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    own_loss, own_grads = loss_and_grads(FaceTrackSFTTrainer.compute_loss)
    trl_loss, trl_grads = loss_and_grads(SFTTrainer.compute_loss)
    assert torch.isfinite(own_loss) and torch.allclose(own_loss, trl_loss, atol=1e-5)
    assert own_grads.keys() == trl_grads.keys() and own_grads
    for name, grad in own_grads.items():
        assert torch.allclose(grad, trl_grads[name], atol=1e-5, rtol=1e-4), name


# ---------------------------------------------------------------------------------------------------- bad input
def test_unknown_recipe_key_is_a_clear_error(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(TINY_RECIPE.read_text() + "\nlerning_rate: 0.1\n")
    with pytest.raises(TrainingSetupError, match="lerning_rate"):
        parse_arguments(["--config", str(recipe)])
    with pytest.raises(TrainingSetupError, match="recipe file not found"):
        parse_arguments(["--config", str(tmp_path / "missing.yaml")])


def test_recipe_env_and_mapping_as_trl_reads_them(tmp_path, monkeypatch):
    """`env:` sets environment variables (TrlParser's key, not an unknown one); a list is no recipe; several typos
    are named together, before SFTConfig's own checks run."""
    monkeypatch.setenv("FACETRACK_RECIPE_TEST", "no")  # (and back to unset after the test)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(TINY_RECIPE.read_text() + "\nenv:\n  FACETRACK_RECIPE_TEST: 'yes'\n")
    parse_arguments(["--config", str(recipe)])
    assert os.environ["FACETRACK_RECIPE_TEST"] == "yes"
    recipe.write_text("- max_steps: 3\n")
    with pytest.raises(TrainingSetupError, match="must be a YAML mapping"):
        parse_arguments(["--config", str(recipe)])
    recipe.write_text("lerning_rate: 0.1\nmax_stepz: 3\n")  # and no use_cpu: SFTConfig would refuse bf16 first
    with pytest.raises(TrainingSetupError, match=r"unknown key\(s\) in recipe .*: lerning_rate, max_stepz"):
        parse_arguments(["--config", str(recipe)])


def test_recipes_parse(tmp_path):
    script_args, model_args, training_args = parse_arguments(["--config", str(TINY_RECIPE)])
    assert model_args.tiny_language_model == "random" and not model_args.train_vision_tower
    assert training_args.remove_unused_columns is False
    assert training_args.dataset_kwargs == {"skip_prepare_dataset": True}
    # Command-line flags override the recipe.
    _, _, overridden = parse_arguments(["--config", str(TINY_RECIPE), "--learning_rate", "0.5"])
    assert overridden.learning_rate == 0.5

    # The paper recipe (bf16 needs a GPU, so it is switched off to parse it here).
    paper = REPO_ROOT / "facetrack" / "training" / "recipes" / "paper_7b.yaml"
    script_args, model_args, training_args = parse_arguments(["--config", str(paper), "--bf16", "false"])
    assert training_args.learning_rate == 2e-5 and training_args.lr_scheduler_type == "cosine"
    assert training_args.warmup_steps == 0.03 and not model_args.train_vision_tower
    assert training_args.activation_checkpointing and script_args.num_frames == 32


def test_accelerate_configs_load_and_keep_the_global_batch():
    import yaml
    from accelerate.commands.config.config_args import ClusterConfig

    paper = yaml.safe_load((REPO_ROOT / "facetrack" / "training" / "recipes" / "paper_7b.yaml").read_text())
    expected = {
        "deepspeed_zero2.yaml": ("DEEPSPEED", 2),
        "deepspeed_zero3.yaml": ("DEEPSPEED", 3),
        "fsdp.yaml": ("FSDP", None),
    }
    for name, (distributed_type, zero_stage) in expected.items():
        path = REPO_ROOT / "facetrack" / "training" / "recipes" / "accelerate" / name
        config = ClusterConfig.from_yaml_file(str(path))
        assert config.distributed_type == distributed_type and config.mixed_precision == "bf16"
        if zero_stage is not None:
            assert config.deepspeed_config["zero_stage"] == zero_stage
        per_process = paper["per_device_train_batch_size"] * paper["gradient_accumulation_steps"]
        global_batch = config.num_processes * per_process
        assert global_batch == 128
        assert f"--config_file facetrack/training/recipes/accelerate/{name}" in path.read_text()  # the launch command is documented


def test_bad_dataset_and_model_choices(tiny_dataset, tiny_base, tmp_path):
    with pytest.raises(TrainingSetupError, match="dataset_name is required"):
        load_training_splits(ScriptArguments())
    with pytest.raises(TrainingSetupError, match="cannot load dataset"):
        load_training_splits(ScriptArguments(dataset_name=str(tmp_path / "nowhere")))
    with pytest.raises(TrainingSetupError, match="no split 'validation'"):
        load_training_splits(ScriptArguments(dataset_name=str(tiny_dataset), dataset_train_split="validation"))
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "rows.jsonl").write_text(json.dumps({"video": "a.mp4", "caption": "x"}) + "\n")
    with pytest.raises(TrainingSetupError, match="lacks column"):
        load_training_splits(ScriptArguments(dataset_name=str(plain)))
    with pytest.raises(TrainingSetupError, match="face_tokens_per_frame=9"):
        training.load_model_and_processor(str(tiny_base), ModelArguments(face_tokens_per_frame=9))
    with pytest.raises(TrainingSetupError, match="model_name_or_path"):
        training.resolve_model_path(ModelArguments(), str(tmp_path / "out"))
    with pytest.raises(TrainingSetupError, match="no checkpoint"):
        resolve_checkpoint("true", str(tmp_path))


def test_cli_train_reports_a_bad_recipe_in_one_line(tmp_path, capsys):
    from facetrack.commands.cli import main

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("not_a_key: 1\n")
    assert main(["train", "--config", str(recipe)]) == 2
    error_lines = capsys.readouterr().err.strip().splitlines()
    assert len(error_lines) == 1 and "not_a_key" in error_lines[0]


def test_recipe_problems_are_one_line_errors(tmp_path, capsys):
    from facetrack.commands.cli import main

    broken = tmp_path / "broken.yaml"
    broken.write_text("max_steps: [\n")
    cases = [
        ([], "give a recipe (--config"),
        ([f"--config={broken}"], "is not valid YAML"),  # --config=PATH is read like --config PATH
        (["--config", str(tmp_path / "none.yaml")], "recipe file not found"),
    ]
    for argv, message in cases:
        assert main(["train", *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (argv, err)


# ---------------------------------------------------------------------------------------- arguments, data rows
def test_a_bad_flag_value_is_one_line_not_the_whole_usage(tmp_path, capsys):
    from facetrack.commands.cli import main

    assert main(["train", "--config", str(TINY_RECIPE), "--max_steps", "abc"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--max_steps/--max-steps: invalid int value: 'abc'" in err[0], err
    assert training.cli_main(["--config", str(TINY_RECIPE), "--use_peft", "perhaps"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--use_peft" in err[0], err


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("max_steps: -3", "max_steps must be a positive number of steps, or -1"),
        ("max_steps: 0", "max_steps must be a positive number"),
        ("learning_rate: 0", "learning_rate must be > 0"),
        ("per_device_train_batch_size: 0", "per_device_train_batch_size must be at least 1"),
        ("num_frames: 0", "num_frames must be at least 1"),
        ("lora_dropout: 1.5", "lora_dropout must be in [0, 1)"),
        ("face_source: camera", "face_source must be 'precomputed' or 'detect'"),
    ],
)
def test_values_training_cannot_use_are_refused_by_name(tmp_path, override, message):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(TINY_RECIPE.read_text() + f"\n{override}\n")
    with pytest.raises(TrainingSetupError) as caught:
        parse_arguments(["--config", str(recipe)])
    assert message in str(caught.value)
    _, _, epochs = parse_arguments(["--config", str(TINY_RECIPE), "--max_steps", "-1"])
    assert epochs.max_steps == -1  # -1 (train num_train_epochs) stays valid


def test_bad_face_track_rows_fail_before_the_model_loads(tiny_dataset, tmp_path, monkeypatch, capsys):
    from datasets import load_dataset

    rows = load_dataset(str(tiny_dataset), split="train")
    broken = rows.map(lambda row, index: {"face_track": "not json" if index == 2 else row["face_track"]},
                      with_indices=True)
    (tmp_path / "broken" / "data").mkdir(parents=True)
    broken.to_parquet(str(tmp_path / "broken" / "data" / "train-00000-of-00001.parquet"))

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the rows were checked")

    monkeypatch.setattr(training, "load_model_and_processor", no_model)
    monkeypatch.setattr(training, "resolve_model_path", no_model)
    output_dir = tmp_path / "run"
    from facetrack.commands.cli import main

    capsys.readouterr()
    code = main(["train", "--config", str(TINY_RECIPE), "--dataset_name", str(tmp_path / "broken"),
                 "--output_dir", str(output_dir)])
    assert code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]  # (datasets' progress bars aside)
    assert len(errors) == 1 and "row 2 (id 'cat'): face_track is not JSON" in errors[0], err
    assert "Traceback" not in err
    assert not output_dir.exists()
    with pytest.raises(TrainingSetupError, match="num_frames=5 but its face track has 4 frames"):
        load_training_splits(ScriptArguments(dataset_name=str(tiny_dataset), num_frames=5))


# -------------------------------------------------------------------------------------------------- checkpoints
def test_checkpoint_completeness_check(tmp_path, tiny_base):
    import shutil

    complete = tmp_path / "checkpoint-4"
    complete.mkdir()
    shutil.copy(tiny_base / "model.safetensors", complete)
    shutil.copy(tiny_base / "config.json", complete)
    (complete / "trainer_state.json").write_text(json.dumps({"global_step": 4}))
    assert checkpoint_problem(complete) is None

    only_config = tmp_path / "checkpoint-8"
    only_config.mkdir()
    shutil.copy(tiny_base / "config.json", only_config)
    assert "no trainer_state.json" in checkpoint_problem(only_config)

    cut_state = tmp_path / "checkpoint-12"
    shutil.copytree(complete, cut_state)
    (cut_state / "trainer_state.json").write_text('{"global_step": 12, "log_hist')
    assert "trainer_state.json is cut short" in checkpoint_problem(cut_state)

    cut_weights = tmp_path / "checkpoint-16"
    shutil.copytree(complete, cut_weights)
    (cut_weights / "trainer_state.json").write_text(json.dumps({"global_step": 16}))
    data = (complete / "model.safetensors").read_bytes()
    (cut_weights / "model.safetensors").write_bytes(data[: len(data) - 100])
    assert "model.safetensors is cut short" in checkpoint_problem(cut_weights)

    # 'true' picks checkpoint-4, moves the newer incomplete ones aside and says why.
    assert resolve_checkpoint("true", str(tmp_path)) == str(complete)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint-4", "incomplete-checkpoint-12", "incomplete-checkpoint-16", "incomplete-checkpoint-8"]
    with pytest.raises(TrainingSetupError, match="incomplete: no trainer_state.json"):
        resolve_checkpoint(str(tmp_path / "incomplete-checkpoint-8"), str(tmp_path))
    shutil.rmtree(complete)
    (tmp_path / "checkpoint-20").mkdir()
    with pytest.raises(TrainingSetupError, match="no complete checkpoint .*checkpoint-20 is incomplete"):
        resolve_checkpoint("true", str(tmp_path))


KILL_TRAINING_SCRIPT = r"""
import json, os, signal, sys
from pathlib import Path
stage, args = sys.argv[1], sys.argv[2:]

def die():
    os.kill(os.getpid(), signal.SIGKILL)

import transformers
from transformers import Trainer, TrainerState
if stage == "tiny_base":  # while the tiny base model is written: its config is there, its weights are not
    def killing(self, save_directory, *a, **k):
        Path(save_directory).mkdir(parents=True, exist_ok=True)
        self.config.save_pretrained(save_directory)
        die()
    transformers.PreTrainedModel.save_pretrained = killing
elif stage == "between_checkpoints":  # after step 3 (checkpoint-2 saved, checkpoint-4 not yet)
    from transformers.trainer_callback import CallbackHandler
    on_step_end = CallbackHandler.on_step_end
    def killing(self, args, state, control):
        if state.global_step == 3:
            die()
        return on_step_end(self, args, state, control)
    CallbackHandler.on_step_end = killing
elif stage == "checkpoint_config_only":  # checkpoint-4 gets its config.json, then the process dies (issue 14)
    save_model = Trainer.save_model
    def killing(self, output_dir=None, _internal_call=False):
        if output_dir and output_dir.endswith("checkpoint-4"):
            self.model.config.save_pretrained(output_dir)
            die()
        return save_model(self, output_dir, _internal_call)
    Trainer.save_model = killing
elif stage == "trainer_state_cut":  # checkpoint-4 written but for the end of its trainer_state.json
    save_to_json = TrainerState.save_to_json
    def killing(self, json_path):
        save_to_json(self, json_path)
        if "checkpoint-4" in json_path:
            text = Path(json_path).read_text()
            Path(json_path).write_text(text[: len(text) // 2])
            die()
    TrainerState.save_to_json = killing
elif stage == "export":  # training finished, the final Hub folder half written
    import facetrack.hub.folder
    def killing(model, processor, output_dir, **kwargs):
        Path(output_dir, "README.md").write_text("half")
        die()
    facetrack.hub.folder.save_hub_folder = killing
from facetrack.training.run import cli_main
cli_main(args)
print("NOT KILLED")
"""


def _train_args(tiny_dataset, output_dir, *extra) -> list[str]:
    return ["--config", str(TINY_RECIPE), "--dataset_name", str(tiny_dataset), "--output_dir", str(output_dir),
            "--max_steps", "6", "--save_steps", "2", "--per_device_train_batch_size", "2", "--logging_steps", "1",
            *extra]


def _final_weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


@pytest.fixture(scope="module")
def uninterrupted_weights(tiny_dataset, tiny_base, tmp_path_factory):
    """The final weights of a 6-step run never interrupted (checkpoints every 2 steps)."""
    threads = torch.get_num_threads()
    output_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    training.run_training(*parse_arguments(
        _train_args(tiny_dataset, output_dir, "--model_name_or_path", str(tiny_base))))
    torch.set_num_threads(threads)
    return _final_weights(output_dir)


@pytest.mark.parametrize(
    ("stage", "resumed_from", "incomplete"),
    [
        ("tiny_base", None, None),
        ("between_checkpoints", "checkpoint-2", None),
        ("checkpoint_config_only", "checkpoint-2", "checkpoint-4"),
        ("trainer_state_cut", "checkpoint-2", "checkpoint-4"),
        ("export", "checkpoint-6", None),
    ],
)
def test_kill_9_at_each_stage_of_training_then_rerun(
    tiny_dataset, tiny_base, uninterrupted_weights, tmp_path, caplog, restore_torch_threads, stage, resumed_from,
    incomplete,
):
    output_dir = tmp_path / "run"
    if stage == "tiny_base":  # the run builds its own tiny base model (the same as tiny_base: seeded)
        extra = ["--tiny_model_dir", str(tmp_path / "base")]
    else:
        extra = ["--model_name_or_path", str(tiny_base)]
    process = subprocess.run(
        [sys.executable, "-c", KILL_TRAINING_SCRIPT, stage, *_train_args(tiny_dataset, output_dir, *extra)],
        env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=300,
    )
    assert process.returncode == -9, process.stdout[-2000:] + process.stderr[-3000:]

    # The same command again, resuming where a checkpoint allows it.
    rerun = _train_args(tiny_dataset, output_dir, *extra)
    if resumed_from is not None:
        rerun += ["--resume_from_checkpoint", "true"]
    with caplog.at_level("WARNING", logger="facetrack.training.checkpoints"):
        training.run_training(*parse_arguments(rerun))
    if resumed_from is not None:
        said = "\n".join(record.getMessage() for record in caplog.records)
        assert f"resuming from {checkpoints_of(output_dir) / resumed_from}, the last complete checkpoint" in said, said
        if incomplete:
            assert f"{incomplete} is incomplete" in said
            assert (checkpoints_of(output_dir) / f"incomplete-{incomplete}").is_dir()
    else:
        assert (tmp_path / "base" / "model.safetensors").is_file()
        assert not list(tmp_path.glob(".base.partial-*"))
    # The result is the uninterrupted run's, weight for weight.
    weights = _final_weights(output_dir)
    assert weights.keys() == uninterrupted_weights.keys()
    for name, tensor in uninterrupted_weights.items():
        assert torch.equal(weights[name], tensor), name
    assert (output_dir / "README.md").read_text() != "half"
    assert not list(output_dir.glob("*checkpoint-*")), "checkpoints go beside the model folder, not inside it"


# ------------------------------------------------------------------------- nothing lost, nothing let in (issue 23)
def test_a_tiny_model_dir_holding_other_files_is_refused_and_kept(tiny_dataset, tmp_path, capsys):
    """`--tiny_model_dir DIR` that is not a complete model folder is never deleted nor built over: one line naming
    DIR, exit 2, before the data or a model loads; an empty folder is built into."""
    from facetrack.commands.cli import main

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("my notes")
    (theirs / "config.json").write_text("{}")
    with pytest.raises(TrainingSetupError, match=f"tiny_model_dir {theirs} exists but is not a complete model"):
        training.resolve_model_path(ModelArguments(tiny_language_model="random", tiny_model_dir=str(theirs)),
                                    str(tmp_path / "run"))
    assert main(["train", "--config", str(TINY_RECIPE), "--dataset_name", str(tmp_path / "no_dataset_yet"),
                 "--output_dir", str(tmp_path / "run"), "--tiny_model_dir", str(theirs)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(theirs) in err[0] and "not a complete model folder" in err[0], err
    assert sorted(p.name for p in theirs.iterdir()) == ["config.json", "notes.txt"]
    assert (theirs / "notes.txt").read_text() == "my notes"
    assert not (tmp_path / "run").exists()

    # A partial folder of another tool next to it (no facetrack marker) is left alone too.
    stranger = tmp_path / ".empty.partial-999999999"
    stranger.mkdir()
    (stranger / "keep.txt").write_text("not facetrack's")
    (tmp_path / "empty").mkdir()
    folder = training.resolve_model_path(
        ModelArguments(tiny_language_model="random", tiny_tokenizer="trained", tiny_model_dir=str(tmp_path / "empty")),
        str(tmp_path / "run"))
    assert folder == str(tmp_path / "empty") and (tmp_path / "empty" / "model.safetensors").is_file()
    assert (stranger / "keep.txt").read_text() == "not facetrack's"
    assert [p.name for p in tmp_path.glob(".empty.partial-*")] == [stranger.name]  # its own was renamed into place


def _rows_with_video(tiny_dataset: Path, folder: Path, video: dict) -> Path:
    """A copy of the tiny dataset's rows in `folder`, row 1's video replaced."""
    import pyarrow.parquet as pq
    from datasets import Video, load_dataset

    rows = load_dataset(str(tiny_dataset), split="train").cast_column("video", Video(decode=False))
    changed = rows.map(lambda row, index: {"video": video if index == 1 else row["video"]}, with_indices=True,
                       features=rows.features)
    (folder / "data").mkdir(parents=True)
    # Written by pyarrow as it is: datasets' own to_parquet would embed the file the path names.
    pq.write_table(changed.with_format("arrow")[:], folder / "data" / "train-00000-of-00001.parquet")
    return folder


def test_a_row_video_path_outside_the_dataset_folder_is_never_opened(tiny_dataset, tiny_processor_and_rows,
                                                                      tmp_path, monkeypatch):
    import builtins

    from datasets import Video, load_dataset

    _, processor, _ = tiny_processor_and_rows
    opened = []
    real_open = builtins.open
    real_os_open = os.open

    def recording_open(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    def recording_os_open(path, *args, **kwargs):
        opened.append(str(path))
        return real_os_open(path, *args, **kwargs)

    passwd = _rows_with_video(tiny_dataset, tmp_path / "passwd", {"bytes": None, "path": "/etc/passwd"})
    climbing = _rows_with_video(tiny_dataset, tmp_path / "climbing", {"bytes": None, "path": "../../etc/passwd"})
    monkeypatch.setattr(builtins, "open", recording_open)
    monkeypatch.setattr(os, "open", recording_os_open)
    for folder in (passwd, climbing):
        with pytest.raises(TrainingSetupError, match=r"row 1 \(id 'astronaut_pan'\): its video has no embedded bytes"):
            training.load_training_splits(ScriptArguments(dataset_name=str(folder)))
    row = load_dataset(str(passwd), split="train").cast_column("video", Video(decode=False))[1]
    row["face_track"] = json.loads(row["face_track"])
    with pytest.raises(TrainingSetupError, match=r"row 'astronaut_pan': its video has no embedded bytes"):
        FaceTrackDataCollator(processor)([row])
    assert not [path for path in opened if path.endswith("etc/passwd")]

    # A relative path inside the dataset's own folder is read from there (checked where it is read).
    inside = tmp_path / "inside"
    _rows_with_video(tiny_dataset, inside, {"bytes": None, "path": "videos/astronaut_pan.mp4"})
    (inside / "videos").mkdir()
    source = tiny_dataset.parent / "videos" / "astronaut_pan.mp4"
    (inside / "videos" / "astronaut_pan.mp4").write_bytes(source.read_bytes())
    rows, _ = training.load_training_splits(ScriptArguments(dataset_name=str(inside)))
    assert rows[1]["video"]["bytes"] == source.read_bytes()
    assert FaceTrackDataCollator(processor)([rows[1]])["video_num_frames"].tolist() == [4]


def test_an_empty_parquet_split_is_one_line_naming_split_and_file(tiny_dataset, tmp_path, monkeypatch, capsys):
    import pyarrow.parquet as pq
    from datasets import load_dataset

    from facetrack.commands.cli import main

    folder = tmp_path / "with_empty_test"
    (folder / "data").mkdir(parents=True)
    rows = load_dataset(str(tiny_dataset), split="train")
    rows.to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"))
    pq.write_table(rows.data.table.slice(0, 0), folder / "data" / "test-00000-of-00001.parquet")
    with pytest.raises(TrainingSetupError, match=r"split 'test': data/test-00000-of-00001.parquet holds no rows"):
        training.load_training_splits(ScriptArguments(dataset_name=str(folder)))

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(training, "resolve_model_path", no_model)
    capsys.readouterr()
    assert main(["train", "--config", str(TINY_RECIPE), "--dataset_name", str(folder), "--output_dir",
                 str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "test-00000-of-00001.parquet holds no rows" in errors[0], err
    assert "Traceback" not in err
