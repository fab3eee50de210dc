"""FaceTrack-MM Gradio demo: drop in a video, see whose face the model follows, what was measured of their expression
(a timeline plot and a measured description) and what the model says about it.

Each upload goes through the one analysis pipeline once (`video_analysis.analyze_video`: decode, track, measure);
the resulting clip and track objects stay in the session (`gr.State`) for the people gallery and the caption step.

Run locally:  python space/app.py [--model PATH_OR_HUB_ID] [--host 127.0.0.1] [--port 7860]

Configuration (environment variables; the command-line flags win):
  FACETRACK_MODEL                 Hub id or local folder (e.g. written by train_sft.py) of the captioning model;
                                  without it the demo tracks faces, shows the measured description (no language
                                  model) and says how to configure a model.
  FACETRACK_SPACE_NUM_FRAMES      frames sampled per video (default 16 on CPU, 32 on GPU)
  FACETRACK_SPACE_MAX_SECONDS     longest video accepted, seconds (default 120)
  FACETRACK_SPACE_MAX_MB          largest upload accepted, MB (default 100)
  FACETRACK_MAX_VIDEO_PIXELS      largest frame accepted, pixels (default 4096 x 2160: 4K; read from the file's
                                  header before anything is decoded, so a tiny file of huge frames cannot exhaust
                                  memory)
  FACETRACK_SPACE_CONCURRENCY     requests processed at once; the rest wait in the queue (default 1)
  FACETRACK_SPACE_MAX_NEW_TOKENS  longest caption, tokens (default 256)
  FACETRACK_TEM_METRIC            the TEM `evaluate` module (default: ../evaluate_metric/tem, or tem/ beside app.py)
  GRADIO_SERVER_NAME / GRADIO_SERVER_PORT   where to listen (Gradio's own variables)
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd

try:  # ZeroGPU: `spaces.GPU` borrows a GPU per call; elsewhere the package is absent and this is a no-op.
    import spaces

    gpu_task = spaces.GPU
except ImportError:

    def gpu_task(function):
        return function


SPACE_DIR = Path(__file__).resolve().parent
# Real example clips: beside a developer checkout (../shared/media), else the test clips of a checkout
# (tests/media, shipped with the repo); a Space built from space/ alone has neither and shows the synthetic one.
SHARED_MEDIA_DIR = Path(os.environ.get("FACETRACK_SHARED_DIR", SPACE_DIR.parent.parent / "shared")) / "media"
EXAMPLE_MEDIA_DIRS = (SHARED_MEDIA_DIR, SPACE_DIR.parent / "tests" / "media")
SHARED_EXAMPLES = {  # file name -> label
    "single_face.mp4": "one person",
    "WolfgangLanger_Pexels.mp4": "changing expressions",
    "face_noface.mov": "a face, then a cut to a title",
}
VIDEO_EXTENSIONS = {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ogv", ".3gp"}
CROP_SIZE = 128
DECODE_MAX_SIDE = 1920  # frames are decoded shrunk to this for tracking and the overlay (the detector uses 640)
OLD_OUTPUT_SECONDS = 3600  # per-request output folders older than this are removed


class VideoRejected(ValueError):
    """An upload the demo refuses (not a video, too long, too large); the message is shown to the user."""


class CaptionModelError(ValueError):
    """The configured caption model could not be loaded or run; the message names the model and the problem."""


def _env_number(name: str, default: float, kind: type = float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)
    except ValueError as error:
        raise ValueError(f"environment variable {name}={raw!r} is not a {kind.__name__}") from error


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


@dataclass
class DemoConfig:
    model_path: str | None = None
    num_frames: int = 16
    max_duration_s: float = 120.0
    max_file_mb: float = 100.0
    concurrency_limit: int = 1
    max_new_tokens: int = 256
    max_pixels: int | None = None  # None: $FACETRACK_MAX_VIDEO_PIXELS, else 4096 x 2160 (video_io's default)
    detector: str = "retinaface"
    work_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="facetrack-space-")))

    @classmethod
    def from_env(cls, **overrides) -> "DemoConfig":
        values = {
            "model_path": os.environ.get("FACETRACK_MODEL") or None,
            "num_frames": _env_number("FACETRACK_SPACE_NUM_FRAMES", 32 if _cuda_available() else 16, int),
            "max_duration_s": _env_number("FACETRACK_SPACE_MAX_SECONDS", 120.0),
            "max_file_mb": _env_number("FACETRACK_SPACE_MAX_MB", 100.0),
            "concurrency_limit": _env_number("FACETRACK_SPACE_CONCURRENCY", 1, int),
            "max_new_tokens": _env_number("FACETRACK_SPACE_MAX_NEW_TOKENS", 256, int),
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        config = cls(**values)
        if config.num_frames < 1 or config.max_duration_s <= 0 or config.max_file_mb <= 0:
            raise ValueError(f"num_frames, max_duration_s and max_file_mb must be positive, got {config}")
        return config


# ------------------------------------------------------------------------------------------------ files and checks
def new_output_dir(config: DemoConfig) -> Path:
    """A fresh folder for one request's files, inside the app's own temp folder (old ones are pruned)."""
    now = time.time()
    for old in config.work_dir.glob("request-*"):
        if now - old.stat().st_mtime > OLD_OUTPUT_SECONDS:
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix="request-", dir=config.work_dir))


def user_message(error: BaseException, path: str | Path) -> str:
    """An error's message as the user may see it: the upload's server-side location becomes its file name."""
    path = Path(path)
    message = str(error)
    for server_side in (str(path.resolve()), str(path)):
        message = message.replace(server_side, path.name)
    return message


def check_video(path: str | Path, config: DemoConfig) -> float | None:
    """Refuse non-videos, files over the size limit, frames over the pixel limit, truncated files and videos over
    the duration limit (header and packets only: nothing is decoded); return the duration. Messages name the file
    by its name only, never where the server keeps it."""
    from facetrack.processing.video_io import VideoDecodeError, VideoTooLargeError, probe_video

    path = Path(path)
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise VideoRejected(
            f"'{path.name}' is not a video file: expected one of {', '.join(sorted(VIDEO_EXTENSIONS))}."
        )
    try:
        size_mb = path.stat().st_size / 1e6
    except OSError:
        raise VideoRejected(f"'{path.name}' could not be found on the server; upload it again.") from None
    if size_mb > config.max_file_mb:
        raise VideoRejected(f"'{path.name}' is {size_mb:.1f} MB; this demo accepts videos up to {config.max_file_mb:g} MB.")
    try:
        info = probe_video(path, max_pixels=config.max_pixels, count_frames=True)  # no frame is decoded
    except VideoTooLargeError as error:
        raise VideoRejected(
            f"'{path.name}' has {error.width}x{error.height} frames; this demo accepts frames of up to "
            f"{error.limit / 1e6:.1f} megapixels (4K: 3840x2160 or 4096x2160). Downscale it and try again."
        ) from error
    except VideoDecodeError as error:
        raise VideoRejected(f"'{path.name}' is not a readable video file: {error.problem}") from error
    duration = info.duration
    if duration is None and info.frames_read and info.fps:  # a raw stream: no header duration, count its frames
        duration = info.frames_read / info.fps
    if duration is not None and duration > config.max_duration_s:
        raise VideoRejected(
            f"'{path.name}' is {duration:.1f} s long; this demo accepts videos up to {config.max_duration_s:g} s. "
            "Trim it and try again."
        )
    return duration


def example_videos(config: DemoConfig) -> tuple[list[str], list[str]]:
    """The bundled examples and their labels: the shared real clips where present, plus the synthesised astronaut."""
    media = next((folder for folder in EXAMPLE_MEDIA_DIRS if (folder / next(iter(SHARED_EXAMPLES))).is_file()), None)
    examples = [
        (str(media / name), label) for name, label in SHARED_EXAMPLES.items() if media and (media / name).is_file()
    ]
    from facetrack.sample_media import write_astronaut_clip

    astronaut = write_astronaut_clip(config.work_dir / "astronaut.mp4", motion="zoom_in")
    examples.append((str(astronaut), "astronaut (synthetic zoom)"))
    return [path for path, _ in examples], [label for _, label in examples]


# ------------------------------------------------------------------------------------------------------- tracking
MEASURED_CAPTION_LABEL = (
    "Measured description: written by rules from face landmarks and an emotion classifier, not by a language model"
)


@dataclass
class TrackingOutputs:
    annotated_video: str
    crops: list[tuple[np.ndarray, str]]  # (face crop, caption with its timestamp), the followed person only
    presence: pd.DataFrame  # time_s, face_height_pct, track: one row per person per sampled frame
    summary: str
    people: list[tuple[np.ndarray, str]]  # one face per person (their biggest, surest), to pick whom to follow
    expression_plot: object | None  # matplotlib Figure of the followed person's expression timeline (None: none)
    measured_caption: str  # the followed person's measured caption, or why there is none
    analysis: object  # the VideoAnalysis (decoded clip + track objects): handed on to the caption step and gallery


def person_name(result, person_id: int) -> str:
    """The plot's series name: the same whoever is followed (the plot keeps its colours from the first draw)."""
    return f"main character (person {person_id})" if person_id == result.main_person_id else f"person {person_id}"


def presence_table(result, timestamps: list[float]) -> pd.DataFrame:
    """Each person's face height (% of frame height, 0 = absent) at each sampled time, for the line plot."""
    rows = []
    for person_id, person in sorted(result.persons.items()):
        name = person_name(result, person_id)
        for time_s, box in zip(timestamps, person.boxes):
            height_pct = 0.0 if box is None else 100.0 * (box[3] - box[1]) / result.height
            rows.append({"time_s": round(float(time_s), 3), "face_height_pct": round(height_pct, 2), "track": name})
    return pd.DataFrame(rows, columns=["time_s", "face_height_pct", "track"])


def track_summary(result, clip, elapsed_s: float) -> str:
    present = int(np.asarray(result.present).sum())
    lines = [
        f"**{len(result.persons)} person(s)** in {len(clip)} sampled frames "
        f"({clip.duration or 0:.1f} s video, {clip.source_width or result.width}x"
        f"{clip.source_height or result.height}); analysed in {elapsed_s:.1f} s.",
    ]
    if result.person_id is None:
        lines.append(f"**No main character:** {result.reason}")
    elif result.person_id == result.main_person_id:
        lines.append(
            f"**Main character: person {result.person_id}**, present in {present} of {len(clip)} sampled frames. "
            f"Why: {result.reason}"
        )
    else:
        lines.append(f"**Following person {result.person_id}** (chosen), present in {present} of {len(clip)} sampled "
                     f"frames: {result.reason}.")
    if len(result.persons) > 1:
        shares = ", ".join(f"person {pid} in {person.num_frames}" for pid, person in sorted(result.persons.items()))
        lines.append(f"Seen: {shares} of {len(clip)} frames. Click a face under *People in the video* to follow "
                     "that person.")
    return "\n\n".join(lines)


def people_gallery(clip, result) -> list[tuple[np.ndarray, str]]:
    """One face crop per person, in id order, labelled with their id (and "main" for the main character)."""
    from facetrack.processing.face_tracking import crop_faces

    items = []
    for person_id, person in sorted(result.persons.items()):
        present = [t for t, box in enumerate(person.boxes) if box is not None]
        best = max(present, key=lambda t: ((person.boxes[t][2] - person.boxes[t][0]) * (person.scores[t] or 0.5), -t))
        crop = crop_faces(clip.frames[best : best + 1], [person.boxes[best]], size=CROP_SIZE)[0]
        items.append((crop, f"person {person_id}" + (" · main" if person_id == result.main_person_id else "")))
    return items


def measured_caption_text(analysis) -> str:
    """What the measured-caption box shows: the caption (its first sentence says it is measured), or why none."""
    if analysis.expression_problem:
        return f"No measured description here: {analysis.expression_problem}"
    return analysis.measured_caption or "No measured description: expressions were not measured."


def render_tracking(analysis, config: DemoConfig, elapsed_s: float, progress) -> TrackingOutputs:
    """The page's view of one analysis: overlay video, the followed person's crops, presence plot, summary, people,
    expression timeline plot and measured caption."""
    from facetrack.expression_plot import expression_figure
    from facetrack.overlay import write_overlay_video

    clip, result = analysis.clip, analysis.track
    progress(0.85, desc="Drawing the face boxes")
    annotated = write_overlay_video(clip.frames, result, new_output_dir(config) / "tracked.mp4")
    present = np.asarray(result.present, dtype=bool)
    crops = analysis.crops(size=CROP_SIZE)
    crop_items = [
        (crops[i], f"{clip.timestamps[i]:.2f} s" + (" (interpolated)" if result.frames[i].interpolated else ""))
        for i in np.flatnonzero(present)
    ]
    report = analysis.expressions
    return TrackingOutputs(
        annotated_video=str(annotated),
        crops=crop_items,
        presence=presence_table(result, clip.timestamps),
        summary=track_summary(result, clip, elapsed_s),
        people=people_gallery(clip, result),
        expression_plot=None if report is None else expression_figure(report),
        measured_caption=measured_caption_text(analysis),
        analysis=analysis,
    )


def track_video(video_path: str, config: DemoConfig, tracker, progress) -> TrackingOutputs:
    """Check the upload, then one pass of the analysis pipeline: decode once, track every face, tell the people
    apart, pick the main character, measure their expressions; then draw the page's views."""
    from facetrack.processing.video_analysis import analyze_video
    from facetrack.processing.video_io import VideoDecodeError

    progress(0.0, desc="Checking the video")
    check_video(video_path, config)
    started = time.perf_counter()
    try:
        analysis = analyze_video(
            video_path, num_frames=config.num_frames, max_side=DECODE_MAX_SIDE, max_pixels=config.max_pixels,
            tracker=tracker, expressions=True,
            progress=lambda fraction, message: progress(0.05 + 0.8 * fraction, desc=message),
        )
    except VideoDecodeError as error:
        raise VideoRejected(f"'{Path(video_path).name}' could not be decoded: {error.problem}") from error
    return render_tracking(analysis, config, time.perf_counter() - started, progress)


def follow_person(analysis, person_id: int, config: DemoConfig, progress) -> TrackingOutputs:
    """Follow another person of an analysed video: the same decoded frames and boxes (no decoding or detection
    again); their expressions are measured the first time they are picked."""
    started = time.perf_counter()
    reason = None if person_id == analysis.track.main_person_id else f"person {person_id} was picked in the gallery"
    chosen = analysis.for_person(
        person_id, reason, progress=lambda fraction, message: progress(0.1 + 0.7 * fraction, desc=message)
    )
    return render_tracking(chosen, config, time.perf_counter() - started, progress)


# -------------------------------------------------------------------------------------------------------- caption
class CaptionModel:
    """The caption model, loaded once at start-up with `facetrack.inference.load_captioner` (AutoProcessor +
    AutoModelForImageTextToText, remote code; CUDA when available, else CPU), streamed token by token."""

    def __init__(self, model_path: str, max_new_tokens: int = 256) -> None:
        from facetrack.inference import load_captioner

        self.model_path = model_path
        self.max_new_tokens = max_new_tokens
        looks_like_hub_id = model_path.count("/") == 1 and not model_path.startswith((".", "/", "~"))
        if not Path(model_path).exists() and not looks_like_hub_id:
            raise CaptionModelError(
                f"the caption model {model_path!r} (FACETRACK_MODEL / --model) is neither an existing folder nor a "
                "Hub id of the form owner/name"
            )
        try:
            self.captioner = load_captioner(model_path)
        except (OSError, ValueError, KeyError) as error:
            raise CaptionModelError(
                f"could not load the caption model {model_path!r} (FACETRACK_MODEL / --model): "
                f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            ) from error

    def stream(self, video_path: str, analysis=None) -> Iterator[str]:
        """Yield the caption as it grows (generate runs in a thread feeding a TextIteratorStreamer). With the page's
        analysis, the model sees exactly the frames and face boxes the page shows, and nothing is decoded or
        tracked again; without one (an API call with the video alone) the video is decoded and tracked here."""
        try:  # the FEC-Bench prompt
            if analysis is not None:
                pieces, _ = self.captioner.stream_caption(analysis.clip, max_new_tokens=self.max_new_tokens,
                                                          face_track=analysis.track)
            else:
                pieces, _ = self.captioner.stream_caption(video_path, max_new_tokens=self.max_new_tokens)
        except ValueError as error:  # the processor names the problem (bad track, undecodable frames, ...)
            raise gr.Error(
                f"Could not prepare the video for the caption model: {user_message(error, video_path)}"
            ) from error
        text = ""
        try:
            for piece in pieces:
                text += piece
                yield text
        except RuntimeError as error:
            raise gr.Error(f"Caption {user_message(error, video_path)}") from error


# ------------------------------------------------------------------------------------------------------------ TEM
TEM_EXAMPLE_REFERENCE = (
    "This video shows the changing facial expressions of a young woman. She has long black hair. At the beginning, "
    "she raises her eyebrows and opens her eyes wide. As the video progresses, she frowns and presses her lips "
    "together. Towards the end, she smiles and nods."
)
TEM_EXAMPLES = [
    [  # the same events, told in the opposite order: content is perfect, temporal order is not
        "This video shows a woman with black hair. At the beginning, she smiles and nods. In the middle, she frowns "
        "and tightens her lips. Towards the end, she lifts her eyebrows and widens her eyes.",
        TEM_EXAMPLE_REFERENCE,
    ],
    [  # the right order, but one event missed and one invented
        "A young woman is shown. At first, she raises her eyebrows and her eyes open wide. Then she frowns and "
        "shakes her head. Finally, she smiles.",
        TEM_EXAMPLE_REFERENCE,
    ],
]
TEM_TABLE_COLUMNS = ["predicted event", "pred. phase", "reference event", "ref. phase", "similarity", "relation", "in order"]
_tem_lock = threading.Lock()
_tem_metric = None


def tem_metric_location() -> str:
    """$FACETRACK_TEM_METRIC (a local folder or Hub id), else the TEM module shipped inside the facetrack package."""
    from facetrack.resources import tem_metric_dir

    return os.environ.get("FACETRACK_TEM_METRIC") or str(tem_metric_dir())


def load_tem_metric():
    """The TEM `evaluate` module, loaded once (its sentence encoder loads on the first compute)."""
    global _tem_metric
    with _tem_lock:
        if _tem_metric is None:
            import evaluate

            _tem_metric = evaluate.load(tem_metric_location())
        return _tem_metric


def matched_events_table(table: list[dict]) -> pd.DataFrame:
    rows = [
        [
            row["prediction_event"] or "",
            "" if row["prediction_phase"] is None else row["prediction_phase"] + 1,
            row["reference_event"] or "",
            "" if row["reference_phase"] is None else row["reference_phase"] + 1,
            "" if row["similarity"] is None else round(row["similarity"], 2),
            row["relation"],
            "yes" if row["in_order"] else "no",
        ]
        for row in table
    ]
    return pd.DataFrame(rows, columns=TEM_TABLE_COLUMNS)


def score_caption(prediction: str, reference: str) -> tuple[str, pd.DataFrame]:
    """TEM of one caption against a reference: a summary line and the matched-event table."""
    if not (prediction or "").strip() or not (reference or "").strip():
        raise gr.Error("Enter both a caption and a reference caption to score.", title="Missing text")
    metric = load_tem_metric()
    result = metric.compute(predictions=[prediction], references=[reference], return_per_sample=True, return_events=True)
    sample = result["per_sample"][0]
    summary = (
        f"**TEM {result['tem']:.3f}** = content F1 {result['content_f1']:.2f} x temporal order "
        f"{result['temporal']:.2f}\n\n"
        f"Content: {sample['num_prediction_events']} predicted and {sample['num_reference_events']} reference events; "
        f"precision {result['content_precision']:.2f} (predicted events the reference supports), "
        f"recall {result['content_recall']:.2f} (reference events the caption covers). "
        f"Order: {sample['lcs']} of {sample['num_aligned']} matched events keep the reference's phase order."
    )
    return summary, matched_events_table(result["events"][0]["table"])


def build_tem_tab(caption_sources: list[tuple[str, gr.components.Component, str]] = ()) -> None:
    """The TEM tab. `caption_sources`: (button label, component holding a caption, button elem_id): each button
    copies that caption (the measured one, the model's) into the box to score."""
    gr.Markdown(
        "**TEM (Temporal Event Matching)** splits both captions into atomic events with their phase of the video "
        "(beginning, middle, end...), matches each predicted event to a reference event, and multiplies the content "
        "F1 by the share of matched events that keep the reference's order. Appearance sentences are not events."
    )
    if tem_metric_location() is None:
        gr.Markdown(
            "**The TEM metric is not available here.** Set `FACETRACK_TEM_METRIC` to the folder `evaluate_metric/tem` "
            "of the FaceTrack-MM repository (or its Hub id) and restart.",
            elem_id="tem-missing",
        )
        return
    with gr.Row():
        prediction = gr.Textbox(label="Caption to score", lines=6, elem_id="tem-prediction")
        reference = gr.Textbox(label="Reference caption", lines=6, elem_id="tem-reference")
    if caption_sources:
        with gr.Row():
            for label, source, elem_id in caption_sources:
                button = gr.Button(label, size="sm", elem_id=elem_id)
                button.click(lambda text: text or "", inputs=source, outputs=prediction, queue=False,
                             api_visibility="private")
    score_button = gr.Button("Score", variant="primary", elem_id="tem-score")
    gr.Examples(examples=TEM_EXAMPLES, inputs=[prediction, reference], label="Examples")
    summary = gr.Markdown(elem_id="tem-summary")
    table = gr.Dataframe(
        headers=TEM_TABLE_COLUMNS, label="Matched events, in the caption's order (then missed reference events)",
        interactive=False, wrap=True, elem_id="tem-table",
    )
    score_button.click(score_caption, inputs=[prediction, reference], outputs=[summary, table], api_name="score_caption")


# ------------------------------------------------------------------------------------------------------- the demo
NO_MODEL_MESSAGE = (
    "**No caption model configured**, so this demo shows the measured description only (written by rules from the "
    "measured events, never by a language model). For a model's caption beside it, point `FACETRACK_MODEL` at a "
    "Hub model id or at a local folder written by `train_sft.py`, then restart: "
    "`FACETRACK_MODEL=path/to/model python space/app.py` (or `python space/app.py --model path/to/model`)."
)
INTRO = (
    "# FaceTrack-MM\n"
    "Drop in a video: FaceTrack-MM samples frames, tracks every face, tells the people apart, picks the **main "
    "character** (thick box) and describes how their facial expression changes; click another face under *People in "
    "the video* to follow that person instead. [Paper](https://arxiv.org/abs/2501.07978)"
)


def build_demo(
    model_path: str | None = None,
    num_frames: int | None = None,
    max_duration_s: float | None = None,
    max_file_mb: float | None = None,
    concurrency_limit: int | None = None,
    max_new_tokens: int | None = None,
) -> gr.Blocks:
    """The demo's Blocks; arguments left as None come from the environment (see the module docstring)."""
    config = DemoConfig.from_env(
        model_path=model_path,
        num_frames=num_frames,
        max_duration_s=max_duration_s,
        max_file_mb=max_file_mb,
        concurrency_limit=concurrency_limit,
        max_new_tokens=max_new_tokens,
    )
    atexit.register(shutil.rmtree, config.work_dir, ignore_errors=True)  # the app's own temp files go with it
    from facetrack.processing.face_tracking import FaceTracker

    tracker = FaceTracker(detector=config.detector)  # one detector session for all requests (track() keeps no state)
    captioner = CaptionModel(config.model_path, config.max_new_tokens) if config.model_path else None

    def track(video: str | None, progress: gr.Progress = gr.Progress()):
        if not video:
            return None, [], None, "", [], None, "", None
        try:
            outputs = track_video(video, config, tracker, progress)
        except ValueError as error:  # VideoRejected, bad frames, ...: the message is written for the user
            raise gr.Error(user_message(error, video), title="Video not accepted", print_exception=False) from error
        if outputs.analysis.track.main_person_id is None:
            gr.Warning(f"No main character found: {outputs.analysis.track.reason}.", title="No face")
        return (outputs.annotated_video, outputs.crops, outputs.presence, outputs.summary, outputs.people,
                outputs.expression_plot, outputs.measured_caption, outputs.analysis)

    def follow(analysis, evt: gr.SelectData, progress: gr.Progress = gr.Progress()):
        if analysis is None or not analysis.track.persons:
            raise gr.Error("Upload a video first: the gallery shows its people once it is tracked.", title="No video")
        person_ids = sorted(analysis.track.persons)
        outputs = follow_person(analysis, person_ids[evt.index], config, progress)
        return (outputs.annotated_video, outputs.crops, outputs.presence, outputs.summary, outputs.expression_plot,
                outputs.measured_caption, outputs.analysis)

    def caption(video: str | None, analysis=None) -> Iterator[str]:
        if not video:
            yield ""
            return
        yield from captioner.stream(video, analysis)

    with gr.Blocks(title="FaceTrack-MM", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(INTRO)
        with gr.Tab("Describe a video"):
            with gr.Row():
                with gr.Column():
                    video_input = gr.Video(label="Video", sources=["upload"], elem_id="video-input")
                    example_paths, example_labels = example_videos(config)
                    gr.Examples(
                        examples=[[path] for path in example_paths],
                        inputs=video_input,
                        example_labels=example_labels,
                        label="Examples",
                    )
                    gr.Markdown(
                        f"Videos up to {config.max_duration_s:g} s and {config.max_file_mb:g} MB, frames up to 4K; "
                        f"{config.num_frames} frames are sampled.",
                        elem_id="limits",
                    )
                with gr.Column():
                    annotated_video = gr.Video(
                        label="Tracked faces (thick box: main character)", interactive=False, elem_id="annotated-video"
                    )
                    summary = gr.Markdown(elem_id="track-summary")
            with gr.Row():
                measured_box = gr.Textbox(label=MEASURED_CAPTION_LABEL, lines=7, interactive=False,
                                          elem_id="measured-caption")
                if captioner is None:
                    caption_box = None
                    gr.Markdown(NO_MODEL_MESSAGE, elem_id="no-model-message")
                else:
                    caption_box = gr.Textbox(
                        label=f"Caption generated by the model {Path(config.model_path).name or config.model_path} "
                        "(streamed)",
                        lines=7,
                        interactive=False,
                        elem_id="caption",
                    )
            people = gr.Gallery(
                label="People in the video: click a face to follow that person", columns=6, height=190,
                allow_preview=False, fit_columns=False, object_fit="contain", elem_id="people",
            )
            crops = gr.Gallery(
                label="The followed person's face in each sampled frame", columns=8, height=320, elem_id="face-crops"
            )
            expression_plot = gr.Plot(  # the figure carries its own title (whose timeline, how many events)
                label="Measured expression timeline of the followed person", show_label=False, format="png",
                elem_id="expression-plot",
            )
            presence = gr.LinePlot(
                x="time_s",
                y="face_height_pct",
                color="track",
                title="Face presence and size over time (0 = not in frame)",
                x_title="time (s)",
                y_title="face height (% of frame)",
                y_lim=[0, 100],
                height=260,
                elem_id="presence-plot",
            )
            # The decoded clip and its track (objects, server side): the gallery and the caption step reuse them.
            analysis_state = gr.State(time_to_live=OLD_OUTPUT_SECONDS)

            tracked = video_input.change(
                track,
                inputs=video_input,
                outputs=[annotated_video, crops, presence, summary, people, expression_plot, measured_box,
                         analysis_state],
                api_name="track",
            )
            followed = people.select(
                follow,
                inputs=analysis_state,
                outputs=[annotated_video, crops, presence, summary, expression_plot, measured_box, analysis_state],
                api_visibility="private",  # a click in the page; API users pass a target to the processor
            )
            if caption_box is not None:
                # A new video clears the previous caption at once (no queue, not part of the API).
                video_input.change(lambda: "", outputs=caption_box, queue=False, api_visibility="private")
                tracked.success(
                    gpu_task(caption), inputs=[video_input, analysis_state], outputs=caption_box, api_name="caption"
                )
                followed.then(lambda: "", outputs=caption_box, queue=False, api_visibility="private").success(
                    gpu_task(caption), inputs=[video_input, analysis_state], outputs=caption_box,
                    api_visibility="private",
                )
        with gr.Tab("Score a caption (TEM)"):
            sources = [("Score the measured description", measured_box, "tem-use-measured")]
            if caption_box is not None:
                sources.append(("Score the model's caption", caption_box, "tem-use-model"))
            build_tem_tab(sources)
    demo.queue(default_concurrency_limit=config.concurrency_limit, max_size=32)
    demo.facetrack_config = config  # read by launch_demo
    return demo


def launch_demo(demo: gr.Blocks, server_name: str | None = None, server_port: int | None = None, **kwargs):
    """Launch with the demo's limits; only Gradio's own cache is served (no extra allowed_paths)."""
    config: DemoConfig = demo.facetrack_config
    return demo.launch(
        server_name=server_name,
        server_port=server_port,
        max_file_size=int(config.max_file_mb * 1_000_000),  # bytes
        footer_links=["api", "gradio"],
        theme=gr.themes.Soft(),
        **kwargs,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="FaceTrack-MM Gradio demo")
    parser.add_argument("--model", help="Hub id or local folder of the caption model (default: $FACETRACK_MODEL)")
    parser.add_argument("--host", help="address to listen on (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: $GRADIO_SERVER_PORT or the first free from 7860)")
    parser.add_argument("--num-frames", type=int, help="frames sampled per video (default: 16 on CPU, 32 on GPU)")
    args = parser.parse_args(argv)
    try:
        demo = build_demo(model_path=args.model, num_frames=args.num_frames)
    except ValueError as error:  # a bad setting or an unloadable model: one readable line, no traceback
        parser.exit(2, f"space/app.py: error: {error}\n")
    launch_demo(demo, server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
