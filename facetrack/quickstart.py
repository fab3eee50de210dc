"""`facetrack quickstart`: the whole system on a CPU in minutes, from clips to captions of clips the model never saw.

The model it trains is the CPU model (recipe `cpu_expression_stream`): SmolLM2-135M-Instruct reading the
expression stream alone, i.e. a small LLM that verbalises measured expression tokens, trained on weak labels (the
captions the rules write from those measurements) of montages of a few clips. It cannot see appearance or scenes.

Stages (each writes `<out>/stages/<name>.json` when done; a re-run skips finished stages):
  1. clips       the training clips (the real videos in ../shared/media or tests/media when present, clips of each
                 face of the group photo there, and clips synthesised from a face photo that a pip dependency ships:
                 skimage's astronaut) and the held-out
                 clips, which no training example comes from: another person's clips and edits of them (reversed,
                 mirrored, slowed down), written here
  2. annotations FDA-format annotations ({"id", "video", "caption"}) of the training clips
  3. dataset     `facetrack dataset build`: parquet + videos + face tracks with the measured expressions, at dense
                 frames (montages are cut from them)
  4. held_out    each held-out clip's measured caption, at the frames the model will be shown (16)
  5. train       `train_sft.py --config cpu_expression_stream` (TRL SFTTrainer, LoRA): montages of the training
                 timelines drawn at every step, each with its own measured caption as the target
  6. caption     a fresh process loads the trained folder with `trust_remote_code` and captions every held-out clip
                 (`facetrack eval --model`)
  7. score       TEM of each caption against its own clip's measured caption and against the other clips' (does the
                 caption follow its clip?), and against the hand-written caption where there is one
"""

from __future__ import annotations

import json
import os
import shutil
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
# Held out: another person than the training clips' (the young man of single_face.mp4; face_noface / noface_face
# are the same footage with a title card), as shipped and edited. No training example comes from them.
HELD_OUT_REAL = ("single_face.mp4", "face_noface.mov", "noface_face.mov")
# name: (source, reversed, mirrored, speed)
HELD_OUT_EDITS_REAL = {
    "single_face_reversed.mp4": ("single_face.mp4", True, False, 1.0),
    "single_face_mirrored.mp4": ("single_face.mp4", False, True, 1.0),
    "single_face_reversed_mirrored.mp4": ("single_face.mp4", True, True, 1.0),
    "single_face_slowed.mp4": ("single_face.mp4", False, False, 0.5),
    "face_noface_reversed.mp4": ("face_noface.mov", True, False, 1.0),
}
HELD_OUT_SYNTHETIC = ("astronaut_pan_right.mp4",)
HELD_OUT_EDITS_SYNTHETIC = {
    "astronaut_pan_right_reversed.mp4": ("astronaut_pan_right.mp4", True, False, 1.0),
    "astronaut_pan_right_mirrored.mp4": ("astronaut_pan_right.mp4", False, True, 1.0),
}
# More people: faces of the shipped group photo, seen through a slow zoom: person 3 has a neutral face, which no
# training video shows, person 2 a wide smile with the mouth open. Stills are cut together with another clip in
# training (TimelineVariants), so they add transitions (neutral -> smiling) without crowding out the video's events.
PHOTO_PEOPLE = (2, 3)  # the detector's person ids in the photo
GROUP_PHOTO = "multi_face.jpg"
PHOTO_PERSON_CAPTION = ("This video shows the facial expression of a person from a group photo, seen through a slow "
                        "zoom; their expression stays the same.")
HELD_OUT_FRAMES = 16  # what the model is shown of each held-out clip, and what its measured caption is made from
TRAIN_FRAMES = 128  # the training clips' timelines, measured densely (~6.5 a second of the 19.7 s clip): montages
# are cut from them

STAGES = ("clips", "annotations", "dataset", "held_out", "train", "caption", "score")


class Quickstart:
    """Runs the stages in order, skipping those whose record exists (delete `<out>/stages/X.json` to redo X)."""

    def __init__(self, out_dir: Path, shared_media: Path | None, llm: str, max_steps: int | None,
                 log: Callable[[str], None]):
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
        from facetrack.data.sample_media import write_astronaut_clip, write_edited_clip, write_face_photo_clips

        video_root = self.out_dir / "videos"
        captions = {}
        if self.shared_media is not None:
            for name, caption in CAPTIONS.items():
                source = self.shared_media / name
                if source.is_file():
                    target = video_root / name
                    if target.is_symlink():  # an earlier version linked them: the dataset build refuses links
                        target.unlink()
                    target.parent.mkdir(parents=True, exist_ok=True)
                    # A copy, not a link: the dataset build reads only files inside its video root (a few MB).
                    shutil.copyfile(source, target)
                    captions[name] = caption
            group_photo = self.shared_media / GROUP_PHOTO
            if group_photo.is_file():
                for path in write_face_photo_clips(group_photo, video_root, prefix="photo_person",
                                                   person_ids=PHOTO_PEOPLE):
                    captions[path.name] = PHOTO_PERSON_CAPTION
        real = all(name in captions for name in HELD_OUT_REAL) and "WolfgangLanger_Pexels.mp4" in captions
        if not real:  # the astronaut stills are the synthetic run's material (beside real videos: only more stills)
            for motion, caption in ASTRONAUT_CAPTIONS.items():
                name = f"astronaut_{motion}.mp4"
                write_astronaut_clip(video_root / name, motion=motion)
                captions[name] = caption
        held_out, edits = (HELD_OUT_REAL, HELD_OUT_EDITS_REAL) if real else (HELD_OUT_SYNTHETIC,
                                                                             HELD_OUT_EDITS_SYNTHETIC)
        for name, (source, reverse, mirror, speed) in edits.items():
            write_edited_clip(video_root / source, video_root / name, reverse=reverse, mirror=mirror, speed=speed)
        held_out = [*held_out, *edits]
        reversed_pairs = [(source, name) for name, (source, reverse, mirror, speed) in edits.items()
                          if reverse and not mirror and speed == 1.0]
        return {"video_root": str(video_root), "captions": captions, "held_out": held_out,
                "train": sorted(name for name in captions if name not in held_out),
                "reversed_pairs": reversed_pairs, "real_media": str(self.shared_media) if real else None}

    def stage_annotations(self, records: dict) -> dict:
        clips = records["clips"]
        train = [{"id": f"quickstart_{index:02d}", "video": name, "caption": clips["captions"][name]}
                 for index, name in enumerate(clips["train"])]
        train_path = self.out_dir / "annotations_train.json"
        train_path.write_text(json.dumps(train, indent=2))
        return {"train": str(train_path), "num_train": len(train)}

    def stage_dataset(self, records: dict) -> dict:
        from facetrack.data.build import build_dataset

        dataset_dir = self.out_dir / "dataset"
        report = build_dataset(
            records["annotations"]["train"],
            video_root=records["clips"]["video_root"],
            out_dir=dataset_dir,
            num_frames=TRAIN_FRAMES,
            num_proc=1,
        )
        summary = report.to_dict()
        # Every training clip must be in the data: a clip the build dropped would silently train another model.
        missing = summary["dropped"] + summary["no_face"]
        if missing:
            raise RuntimeError("the dataset build left out training clips: " + "; ".join(
                f"{item.get('video')}: {item.get('reason') or item.get('status')}" for item in missing))
        return {"dataset_dir": str(dataset_dir), "report": summary}

    def stage_held_out(self, records: dict) -> dict:
        from facetrack.analysis.video_analysis import analyze_video
        from facetrack.expressions.caption import measured_caption_text

        clips = records["clips"]
        items = []
        for index, name in enumerate(clips["held_out"]):
            analysis = analyze_video(Path(clips["video_root"]) / name, num_frames=HELD_OUT_FRAMES, expressions=True)
            if analysis.expression_problem:
                raise RuntimeError(f"cannot measure {name}: {analysis.expression_problem}")
            items.append({"id": f"held_out_{index:02d}", "video": name,
                          "caption": measured_caption_text(analysis.measured_caption),
                          "caption_source": "measured", "human_caption": clips["captions"].get(name)})
        path = self.out_dir / "annotations_held_out.json"
        path.write_text(json.dumps(items, indent=2))
        return {"annotations": str(path), "num_clips": len(items)}

    def stage_train(self, records: dict) -> dict:
        from facetrack.training.checkpoints import checkpoints_dir
        from facetrack.training.config import parse_arguments, recipe_path
        from facetrack.training.run import run_training

        output_dir = self.out_dir / "model"
        argv = [
            "--config", str(recipe_path("cpu_expression_stream")),
            "--dataset_name", records["dataset"]["dataset_dir"],
            "--output_dir", str(output_dir),
            "--tiny_language_model", self.llm,
            "--tiny_model_dir", str(self.out_dir / "base_model"),
        ]
        if self.max_steps is not None:
            argv += ["--max_steps", str(self.max_steps), "--save_steps", str(max(10, self.max_steps // 3))]
        if self.llm == "random":
            # A tiny random LLM (tests, smoke runs): fully trained, one thread, its own small tokenizer.
            argv += ["--tiny_tokenizer", "trained", "--use_peft", "false", "--learning_rate", "3e-3",
                     "--cpu_threads", "1"]
        checkpoints = Path(checkpoints_dir(str(output_dir)))  # beside the model folder, never inside it
        argv += ["--resume_from_checkpoint", "true"] if any(checkpoints.glob("checkpoint-*")) else []
        script_args, model_args, training_args = parse_arguments(argv)
        result = run_training(script_args, model_args, training_args)
        losses = _losses(checkpoints)
        return {"model_dir": result["final_dir"], "first_loss": losses[0] if losses else None,
                "last_loss": losses[-1] if losses else None, "steps": training_args.max_steps, "argv": argv}

    def stage_caption(self, records: dict) -> dict:
        eval_dir = self.out_dir / "held_out_eval"
        # A fresh process: the captions come from the folder on disk, loaded with trust_remote_code.
        command = [sys.executable, "-m", "facetrack", "eval", "--model", records["train"]["model_dir"],
                   "--annotations", records["held_out"]["annotations"], "--video-root", records["clips"]["video_root"],
                   "--out", str(eval_dir), "--num-frames", str(HELD_OUT_FRAMES), "--max-new-tokens", "200",
                   "--batch-size", "4", "--name", "quickstart model"]
        started = time.perf_counter()
        completed = subprocess.run(command, capture_output=True, text=True)
        if completed.returncode != 0:
            raise RuntimeError(f"`{' '.join(command)}` failed:\n{completed.stderr[-2000:]}")
        seconds = time.perf_counter() - started
        predictions = [json.loads(line) for line in (eval_dir / "predictions.jsonl").read_text().splitlines()
                       if line.strip()]
        return {"predictions": {row["id"]: row["prediction"] for row in predictions}, "eval_dir": str(eval_dir),
                "command": " ".join(command), "process_seconds": round(seconds, 1)}

    def stage_score(self, records: dict) -> dict:
        from facetrack.evaluation.follows_clip import caption_follows_clip
        from facetrack.evaluation.tem.metric import load_tem_metric

        tem = load_tem_metric()
        items = json.loads(Path(records["held_out"]["annotations"]).read_text())
        predictions = [records["caption"]["predictions"][item["id"]] for item in items]
        follows = caption_follows_clip(predictions, [item["caption"] for item in items],
                                       [item["video"] for item in items],
                                       reversed_pairs=records["clips"]["reversed_pairs"], tem=tem)
        human = []
        for item, prediction in zip(items, predictions):
            if item.get("human_caption"):
                scores = tem.compute(predictions=[prediction, item["caption"]],
                                     references=[item["human_caption"]] * 2, return_per_sample=True)["per_sample"]
                human.append({"video": item["video"], "model": scores[0]["tem"], "measured": scores[1]["tem"]})
        return {"follows_clip": follows, "against_hand_written": human}


def _losses(output_dir: Path) -> list[float]:
    """Training losses from the newest trainer_state.json under output_dir."""
    states = sorted(output_dir.rglob("trainer_state.json"), key=lambda path: path.stat().st_mtime)
    if not states:
        return []
    history = json.loads(states[-1].read_text()).get("log_history", [])
    return [entry["loss"] for entry in history if "loss" in entry]


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def format_report(records: dict, out_dir: Path) -> str:
    """The report printed at the end: what was made, where, and for each held-out clip the model's caption beside
    its measured caption, with TEM; then whether the captions follow their clips."""
    from facetrack.evaluation.follows_clip import format_follows_clip

    clips, train, score = records["clips"], records["train"], records["score"]
    follows = score["follows_clip"]
    lines = [
        "",
        "FaceTrack-MM quickstart report",
        "=" * 30,
        f"model:        {train['model_dir']}  (Hub layout; {train['steps']} steps, training loss "
        f"{_number(train['first_loss'])} -> {_number(train['last_loss'])})",
        "              what it is: a small LLM (SmolLM2-135M) that verbalises measured expression tokens (1 per frame:",
        "              the states, events and times the caption rules compute from MediaPipe's blendshapes and head",
        "              pose and fer's emotions), trained on weak labels (captions written by rules from the",
        "              measurements) of montages of a few clips. It cannot see appearance.",
        f"trained on:   {', '.join(clips['train'])}"
        + ("" if clips["real_media"] else "  (synthesised only: no real sample videos found)"),
        f"dataset:      {records['dataset']['dataset_dir']}  (load_dataset('{records['dataset']['dataset_dir']}'))",
        f"held out:     {len(clips['held_out'])} clips no training example comes from, {HELD_OUT_FRAMES} frames each "
        f"({records['held_out']['annotations']})",
        "",
    ]
    for clip in follows["clips"]:
        lines += [f"{clip['name']}  (TEM of the model's caption against the measured one: {clip['own']:.3f})",
                  f"  model:    {clip['prediction']}",
                  f"  measured: {clip['reference']}"]
    lines += ["", "Does each caption follow its own clip? TEM against its own clip's measured caption and against the "
              "other clips':"]
    lines += ["  " + line for line in format_follows_clip(follows)]
    for row in score["against_hand_written"]:
        lines.append(f"  against the hand-written caption of {row['video']}: TEM model {row['model']:.3f}, "
                     f"measured {row['measured']:.3f}")
    lines += [
        "",
        "(measured: written by rules from face landmarks and an emotion classifier on the same frames, not by a "
        "language model; the model's captions came from the folder reloaded with trust_remote_code in a fresh process)",
        f"Try it:  facetrack describe VIDEO --model {train['model_dir']}",
        f"Demo:    FACETRACK_MODEL={train['model_dir']} make demo",
        f"Stages are recorded in {out_dir / 'stages'}; re-running reuses them.",
    ]
    return "\n".join(lines)
