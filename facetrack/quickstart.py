"""`facetrack quickstart`: the whole system on a CPU in minutes, from clips to a scored caption.

Stages (each writes `<out>/stages/<name>.json` when done; a re-run skips finished stages):
  1. clips       sample clips: the real videos in ../shared/media when present, plus clips synthesised from a face
                 photo that a pip dependency ships (skimage's astronaut)
  2. annotations FDA-format annotations ({"id", "video", "caption"}) for the training clips and a held-back clip
  3. dataset     `facetrack dataset build`: parquet + videos + precomputed main-character face tracks
  4. train       `train_sft.py` with the tiny CPU recipe (TRL SFTTrainer); its output is a Hub-layout model folder
  5. caption     a fresh process loads that folder with `trust_remote_code` and captions the held-back clip
                 (`facetrack describe --json`: the model's caption and the measured one, from the same frames)
  6. score       TEM (evaluate_metric/tem) of both captions against the held-back reference
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Real sample videos: beside a developer checkout (../shared/media), else the test clips every checkout ships
# (tests/media); an installed wheel has neither and uses the synthesised clips only.
_REPO = Path(__file__).resolve().parent.parent
DEFAULT_SHARED_MEDIA = next(
    (folder for folder in (_REPO.parent / "shared" / "media", _REPO / "tests" / "media") if folder.is_dir()),
    _REPO.parent / "shared" / "media",
)

# Captions written by hand for the sample clips, in the FDA style (appearance sentence, then phases).
YOUNG_MAN = "This video shows the changing facial expressions of a young man. He has short black hair and wears a black T-shirt."
CAPTIONS = {
    "single_face.mp4": YOUNG_MAN + " At the beginning, his face is neutral, his eyebrows are relaxed and his lips are "
    "closed. As the video progresses, he narrows his eyes slightly and the corners of his mouth rise. In the middle, "
    "he smiles broadly, showing his teeth, and his cheeks lift. Towards the end, his smile fades and his face returns "
    "to a calm, neutral expression.",
    "face_noface.mov": YOUNG_MAN + " At the beginning, his face is neutral and his lips are closed. As the video "
    "progresses, he smiles broadly, showing his teeth, and his eyes narrow. In the middle, he keeps smiling and his "
    "cheeks rise. Towards the end, the shot cuts to an animated title and his face is no longer visible.",
    "noface_face.mov": YOUNG_MAN + " At the beginning, no face is visible while an animated title is shown. As the "
    "video progresses, the man appears with a neutral face and closed lips. In the middle, he smiles broadly, showing "
    "his teeth, and his cheeks rise. Towards the end, the picture fades to black.",
    "WolfgangLanger_Pexels.mp4": "This video shows the changing facial expressions of a young woman. She has long "
    "brown hair parted in the middle. At the beginning, she looks down with half-closed eyes and her lips are pressed "
    "together. As the video progresses, she frowns, squeezes her eyes shut and covers her face with her hand as if "
    "crying. In the middle, she lifts her eyebrows, opens her eyes and touches her lips with her fingers. Towards the "
    "end, she raises her head, opens her mouth and breaks into a wide smile, showing her teeth.",
}
ASTRONAUT = "This video shows the facial expression of a middle-aged woman. She has short light brown hair and wears an orange spacesuit."
ASTRONAUT_CAPTIONS = {
    "zoom_in": ASTRONAUT + " At the beginning, she smiles gently and looks at the camera. As the video progresses, "
    "the camera moves closer to her face while her smile stays the same. In the middle, her eyebrows remain relaxed. "
    "Towards the end, she keeps the same calm smile.",
    "pan_left": ASTRONAUT + " At the beginning, she smiles and shows her teeth. As the video progresses, the camera "
    "slides to the side and her head stays still. In the middle, her eyes stay open and look ahead. Towards the end, "
    "she is still smiling warmly.",
    "zoom_out": ASTRONAUT + " At the beginning, her face fills the frame and she smiles. As the video progresses, the "
    "camera moves away from her. In the middle, her smile does not change. Towards the end, her shoulders and the "
    "spacesuit come into view while she keeps smiling.",
    "pan_right": ASTRONAUT + " At the beginning, she smiles with her lips slightly parted. As the video progresses, "
    "the camera slides sideways. In the middle, her eyebrows stay relaxed and her eyes look at the camera. Towards "
    "the end, she keeps smiling.",
}
HELD_BACK_REAL = "single_face.mp4"
HELD_BACK_SYNTHETIC = "pan_right"

STAGES = ("clips", "annotations", "dataset", "train", "caption", "score")


class Quickstart:
    """Runs the stages in order, skipping those whose record exists (delete `<out>/stages/X.json` to redo X)."""

    def __init__(self, out_dir: Path, shared_media: Path | None, llm: str, max_steps: int, log: Callable[[str], None]):
        self.out_dir = out_dir
        self.shared_media = shared_media if shared_media and shared_media.is_dir() else None
        self.llm = llm
        self.max_steps = max_steps
        self.log = log
        self.stage_dir = out_dir / "stages"

    # ------------------------------------------------------------------------------------------------ plumbing
    @property
    def options(self) -> dict:
        return {"llm": self.llm, "max_steps": self.max_steps,
                "shared_media": str(self.shared_media) if self.shared_media else None}

    def run(self) -> dict:
        self.stage_dir.mkdir(parents=True, exist_ok=True)
        # Reusing stages made with other options would mix two runs: refuse, and say how to start over.
        options_path = self.stage_dir / "options.json"
        if options_path.is_file():
            previous = json.loads(options_path.read_text())
            if previous != self.options:
                raise ValueError(
                    f"{self.out_dir} holds a quickstart run made with {previous}, not {self.options}: "
                    "pass --fresh to start over, or another --out"
                )
        options_path.write_text(json.dumps(self.options))
        records = {}
        for index, name in enumerate(STAGES, start=1):
            record_path = self.stage_dir / f"{name}.json"
            if record_path.is_file():
                records[name] = json.loads(record_path.read_text())
                self.log(f"[{index}/{len(STAGES)}] {name}: done before, reusing ({record_path})")
                continue
            self.log(f"[{index}/{len(STAGES)}] {name}: running...")
            start = time.perf_counter()
            record = getattr(self, f"stage_{name}")(records)
            record["seconds"] = round(time.perf_counter() - start, 1)
            # Written last and atomically: an interrupted stage leaves no record and is redone.
            temporary = record_path.with_suffix(".tmp")
            temporary.write_text(json.dumps(record, indent=2))
            os.replace(temporary, record_path)
            records[name] = record
            self.log(f"[{index}/{len(STAGES)}] {name}: finished in {record['seconds']} s")
        return records

    # ------------------------------------------------------------------------------------------------ stages
    def stage_clips(self, records: dict) -> dict:
        from facetrack.data.sample_media import write_astronaut_clip

        video_root = self.out_dir / "videos"
        clips = {}
        for motion, caption in ASTRONAUT_CAPTIONS.items():
            name = f"astronaut_{motion}.mp4"
            write_astronaut_clip(video_root / name, motion=motion)
            clips[name] = caption
        if self.shared_media is not None:
            for name, caption in CAPTIONS.items():
                source = self.shared_media / name
                if source.is_file():
                    target = video_root / name
                    if target.is_symlink() or target.exists():
                        target.unlink()
                    target.symlink_to(source.resolve())
                    clips[name] = caption
        held_back = HELD_BACK_REAL if HELD_BACK_REAL in clips else f"astronaut_{HELD_BACK_SYNTHETIC}.mp4"
        return {"video_root": str(video_root), "captions": clips, "held_back": held_back,
                "real_media": str(self.shared_media) if self.shared_media else None}

    def stage_annotations(self, records: dict) -> dict:
        clips = records["clips"]
        train, held_back = [], []
        for index, (name, caption) in enumerate(sorted(clips["captions"].items())):
            item = {"id": f"quickstart_{index:02d}", "video": name, "caption": caption}
            (held_back if name == clips["held_back"] else train).append(item)
        train_path = self.out_dir / "annotations_train.json"
        held_back_path = self.out_dir / "annotations_held_back.json"
        train_path.write_text(json.dumps(train, indent=2))
        held_back_path.write_text(json.dumps(held_back, indent=2))
        return {"train": str(train_path), "held_back": str(held_back_path), "num_train": len(train)}

    def stage_dataset(self, records: dict) -> dict:
        from facetrack.data.build import build_dataset

        dataset_dir = self.out_dir / "dataset"
        report = build_dataset(
            records["annotations"]["train"],
            video_root=records["clips"]["video_root"],
            out_dir=dataset_dir,
            num_frames=8,
            num_proc=1,
        )
        return {"dataset_dir": str(dataset_dir), "report": report.to_dict()}

    def stage_train(self, records: dict) -> dict:
        from facetrack.training.checkpoints import checkpoints_dir
        from facetrack.training.config import recipe_path
        from facetrack.training.run import main as train_main

        output_dir = self.out_dir / "model"
        argv = [
            "--config", str(recipe_path("tiny_cpu.yaml")),
            "--dataset_name", records["dataset"]["dataset_dir"],
            "--output_dir", str(output_dir),
            "--max_train_samples", str(records["annotations"]["num_train"]),
            "--max_steps", str(self.max_steps),
            "--tiny_language_model", self.llm,
            "--tiny_model_dir", str(self.out_dir / "base_model"),
        ]
        if self.llm == "smollm2":
            # A 135M-parameter LLM: real matrix sizes, so all cores help; a real LM memorises at a far lower lr.
            argv += ["--tiny_tokenizer", "smollm2", "--learning_rate", "5e-4", "--per_device_train_batch_size", "2",
                     "--cpu_threads", str(os.cpu_count() or 1)]
        checkpoints = Path(checkpoints_dir(str(output_dir)))  # beside the model folder, never inside it
        argv += ["--resume_from_checkpoint", "true"] if any(checkpoints.glob("checkpoint-*")) else []
        train_main(argv)
        losses = _losses(checkpoints)
        return {"model_dir": str(output_dir), "first_loss": losses[0] if losses else None,
                "last_loss": losses[-1] if losses else None, "argv": argv}

    def stage_caption(self, records: dict) -> dict:
        held_back = json.loads(Path(records["annotations"]["held_back"]).read_text())[0]
        video = Path(records["clips"]["video_root"]) / held_back["video"]
        # A fresh process: the caption comes from the folder on disk, loaded with trust_remote_code.
        command = [sys.executable, "-m", "facetrack", "describe", str(video), "--model",
                   records["train"]["model_dir"], "--json", "--max-new-tokens", "160"]
        completed = subprocess.run(command, capture_output=True, text=True)
        if completed.returncode != 0:
            raise RuntimeError(f"`{' '.join(command)}` failed:\n{completed.stderr[-2000:]}")
        result = json.loads(completed.stdout)
        # Without the optional expression packages describe says so in one stderr line and gives no measured caption.
        note = next((line for line in completed.stderr.splitlines() if line.startswith("note: no measured caption")),
                    None)
        return {"video": str(video), "reference": held_back["caption"], "caption": result["caption"],
                "measured_caption": result.get("measured_caption"), "measured_note": note,
                "main_face_frames": sum(frame["box"] is not None for frame in result["face_track"]["frames"]),
                "frames": len(result["face_track"]["frames"]), "command": " ".join(command)}

    def stage_score(self, records: dict) -> dict:
        from facetrack.evaluation.tem.metric import load_tem_metric

        tem = load_tem_metric()
        caption = records["caption"]
        scores = tem.compute(predictions=[caption["caption"]], references=[caption["reference"]],
                             return_events=True)
        measured = caption.get("measured_caption")
        measured_scores = None if not measured else tem.compute(
            predictions=[measured], references=[caption["reference"]], return_events=True)
        return {"scores": _jsonable(scores), "measured_scores": None if measured_scores is None
                else _jsonable(measured_scores)}


def _score_lines(scores: dict) -> list[str]:
    """The TEM summary line and the matched-event table of one caption."""
    summary = {key: value for key, value in scores.items() if isinstance(value, (int, float))}
    lines = ["TEM:          " + ", ".join(f"{key}={value:.3f}" for key, value in sorted(summary.items()))]
    table = scores["events"][0]["table"]
    lines.append(f"matched events ({len(table)} rows; phase in brackets, * = counted in temporal order):")
    for row in table:
        predicted = f"[{row['prediction_phase']}] {row['prediction_event']}" if row["prediction_event"] else "-"
        reference = f"[{row['reference_phase']}] {row['reference_event']}" if row["reference_event"] else "-"
        mark = "*" if row["in_order"] else " "
        lines.append(f"  {mark} {row['relation']:<13} {predicted}  <->  {reference}")
    return lines


def _losses(output_dir: Path) -> list[float]:
    """Training losses from the newest trainer_state.json under output_dir."""
    states = sorted(output_dir.rglob("trainer_state.json"), key=lambda path: path.stat().st_mtime)
    if not states:
        return []
    history = json.loads(states[-1].read_text()).get("log_history", [])
    return [entry["loss"] for entry in history if "loss" in entry]


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _jsonable(value):
    return json.loads(json.dumps(value, default=lambda item: getattr(item, "__dict__", str(item))))


def format_report(records: dict, out_dir: Path) -> str:
    """The short report printed at the end: what was made, where, and the score."""
    caption, train, scores = records["caption"], records["train"], records["score"]["scores"]
    lines = [
        "",
        "FaceTrack-MM quickstart report",
        "=" * 30,
        f"clips:        {len(records['clips']['captions'])} in {records['clips']['video_root']}"
        + ("" if records["clips"]["real_media"] else "  (synthesised only: ../shared/media not found)"),
        f"annotations:  {records['annotations']['train']} (train), {records['annotations']['held_back']} (held back)",
        f"dataset:      {records['dataset']['dataset_dir']}  (load_dataset('{records['dataset']['dataset_dir']}'))",
        f"model:        {train['model_dir']}  (Hub layout; training loss {_number(train['first_loss'])} -> {_number(train['last_loss'])})",
        f"held back:    {caption['video']}  (main face in {caption['main_face_frames']}/{caption['frames']} frames)",
        f"reference:    {caption['reference']}",
        f"caption:      {caption['caption']}",
        "              (generated by the model reloaded from disk with trust_remote_code, in a fresh process)",
    ]
    lines += _score_lines(scores)
    measured, measured_scores = caption.get("measured_caption"), records["score"].get("measured_scores")
    if measured and measured_scores:
        lines += [f"measured:     {measured}",
                  "              (measured: written by rules from face landmarks and an emotion classifier on the "
                  "same frames, not by a language model)"]
        lines += _score_lines(measured_scores)
    else:
        lines.append(f"measured:     not available ({caption.get('measured_note') or 'no measured caption'})")
    lines += [
        "",
        f"Try it:  facetrack describe VIDEO --model {train['model_dir']}",
        f"Demo:    FACETRACK_MODEL={train['model_dir']} make demo",
        f"Stages are recorded in {out_dir / 'stages'}; re-running reuses them.",
    ]
    return "\n".join(lines)
