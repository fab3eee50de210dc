"""The Space's tracking step and its views: one pass of the analysis pipeline per upload (decode once, track, measure),
then the page's views of that one `VideoAnalysis` (overlay video, face crops, presence plot, summary, people,
expression plot, measured caption); picking another person redraws from the same analysis.

Files: every view that is a file (the overlay video, the crop and people images) is written into the request's own
folder (`new_output_dir`), under a name unique to that request, each under a temporary name first and renamed into
place when complete. Nothing is ever rewritten, so no request can cut short a file another request is still
downloading (gallery images handed to Gradio as arrays were rewritten in its content-addressed cache by every
request of the same clip)."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from space_config import CROP_SIZE, DECODE_MAX_SIDE, DemoConfig, VideoRejected, check_upload, new_output_dir

MEASURED_CAPTION_INFO = "Written by rules from face landmarks and an emotion classifier, not by a language model."


@dataclass
class TrackingOutputs:
    annotated_video: str
    crops: list[tuple[str, str]]  # (face crop PNG, caption with its timestamp), the followed person only
    presence: pd.DataFrame  # time_s, face_height_pct, track: one row per person per sampled frame
    summary: str
    people: list[tuple[str, str]]  # one face PNG per person (their biggest, surest), to pick whom to follow
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
    if result.person_id is not None:  # what the overlay's boxes mean, for whoever is followed now
        others = "; thin boxes: the others" if len(result.persons) > 1 else ""
        role = "the main character" if result.person_id == result.main_person_id else (
            f"chosen (the main character, person {result.main_person_id}, has a thin box)"
            if result.main_person_id is not None else "chosen")
        lines.append(f"*Tracked faces*: the thick green box is person {result.person_id}, {role}{others}.")
    if len(result.persons) > 1:
        shares = ", ".join(f"person {pid} in {person.num_frames}" for pid, person in sorted(result.persons.items()))
        lines.append(f"Seen: {shares} of {len(clip)} frames. Click a face under *People* to follow that person.")
    return "\n\n".join(lines)


def write_complete(path: Path, write) -> Path:
    """`write(temporary_path)` writes the file; it is then renamed to `path` in one step, so whoever opens `path`
    (Gradio copying it into its cache, a browser downloading it) sees the whole file or none."""
    descriptor, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=path.suffix)
    os.close(descriptor)
    try:
        write(Path(staging))
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return path


def write_image(image: np.ndarray, path: Path) -> str:
    """An RGB array as a PNG at `path`, written completely before it appears there."""
    from PIL import Image

    return str(write_complete(path, lambda staging: Image.fromarray(image).save(staging, format="PNG")))


def people_gallery(clip, result) -> list[tuple[np.ndarray, str]]:
    """One face crop per person, in id order, labelled with their id (and "main" for the main character)."""
    from facetrack.video.crops import crop_faces

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
    from facetrack.expressions.plot import expression_figure
    from facetrack.analysis.overlay import write_overlay_video

    clip, result = analysis.clip, analysis.track
    progress(0.85, desc="Drawing the face boxes")
    folder = new_output_dir(config)  # this request's own: its files are never written by another request
    request = folder.name.removeprefix("request-")  # in every file name too (Gradio caches by content + name)
    annotated = write_complete(folder / f"tracked-{request}.mp4",
                               lambda staging: write_overlay_video(clip.frames, result, staging))
    present = np.asarray(result.present, dtype=bool)
    crops = analysis.crops(size=CROP_SIZE)
    crop_items = [
        (write_image(crops[i], folder / f"face-{i:03d}-{request}.png"),
         f"{clip.timestamps[i]:.2f} s" + (" (interpolated)" if result.frames[i].interpolated else ""))
        for i in np.flatnonzero(present)
    ]
    people = [(write_image(image, folder / f"person-{n:02d}-{request}.png"), label)
              for n, (image, label) in enumerate(people_gallery(clip, result))]
    report = analysis.expressions
    return TrackingOutputs(
        annotated_video=str(annotated),
        crops=crop_items,
        presence=presence_table(result, clip.timestamps),
        summary=track_summary(result, clip, elapsed_s),
        people=people,
        expression_plot=None if report is None else expression_figure(report),
        measured_caption=measured_caption_text(analysis),
        analysis=analysis,
    )


def track_video(video_path: str, config: DemoConfig, tracker, progress) -> TrackingOutputs:
    """Check the upload, then one pass of the analysis pipeline: decode once, track every face, tell the people
    apart, pick the main character, measure their expressions; then draw the page's views."""
    from facetrack.analysis.video_analysis import analyze_video
    from facetrack.video.probe import VideoDecodeError

    progress(0.0, desc="Checking the video")
    video_info, _ = check_upload(video_path, config)
    started = time.perf_counter()
    try:
        analysis = analyze_video(
            video_path, num_frames=config.num_frames, max_side=DECODE_MAX_SIDE, max_pixels=config.max_pixels,
            video_info=video_info, tracker=tracker, expressions=True,
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
