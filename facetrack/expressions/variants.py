"""Edited versions of a measured clip from its timeline alone: thousands of varied training examples, no measuring.

    from facetrack.expressions.variants import TimelineVariant, random_variant

    variant = TimelineVariant(start=2.0, seconds=5.0, speed=0.5, reverse=True, mirror=True, num_frames=16)
    report = variant.report(source_report, frame_width=640)     # timeline, events and measured caption re-derived
    variant = random_variant(source_report.timeline, rng)       # one drawn at random (see its arguments)

Each transform stands for what the real pipeline would measure on a video edited that way (with ffmpeg, say),
given a timeline measured densely (every frame, or a high `fps`) on the source:

- `window(timeline, start, seconds)`: the frames with `start <= t < start + seconds` (a cut, `-ss start -t seconds`);
- `retime(timeline, speed)`: timestamps / speed (`setpts=PTS/speed`: 0.5 is slowed down twice, 2 sped up);
- `reverse(timeline)`: the frames in reverse order at times `last - t` (ffmpeg's `reverse`);
- `mirror(timeline, frame_width)`: a horizontal flip (`hflip`): yaw and roll negated, every Left/Right blendshape
  pair and the left/right eye measures swapped, boxes flipped; pitch, mouth, brows and emotions unchanged;
- `resample(timeline, num_frames)`: the frames `load_video(num_frames=...)` picks from the edited video
  (`round(linspace(0, n - 1, num_frames))`).

Every variant starts at time 0 and its frame indices count its own frames, as a new file's would. `TimelineVariant`
applies them in that order (resampling last, as the sampler sees the edited video) and re-derives the events and the
measured caption (`report_from_timeline`). How close each comes to the real pipeline on real edited videos is
measured in docs/expressions.md ("Variants").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np

from facetrack.expressions.config import ExpressionConfig
from facetrack.expressions.measure import ExpressionTimeline, FrameExpression
from facetrack.expressions.report import ExpressionReport, report_from_timeline
from facetrack.video.decode import uniform_indices


def _renumbered(timeline: ExpressionTimeline, frames: list[FrameExpression], times) -> ExpressionTimeline:
    """The frames (copies) at new times starting at 0, indexed 0..n-1 as the frames of a new file."""
    times = np.asarray(times, dtype=np.float64)
    origin = float(times.min()) if len(times) else 0.0
    renumbered = [replace(frame, timestamp=round(float(t - origin), 6), frame_index=index)
                  for index, (frame, t) in enumerate(zip(frames, times))]
    return replace(timeline, frames=renumbered, models=dict(timeline.models))


def window(timeline: ExpressionTimeline, start: float, seconds: float) -> ExpressionTimeline:
    """The frames shown from `start` for `seconds` (both in the timeline's seconds; `math.inf`: to the end),
    re-timed to start at 0."""
    if not math.isfinite(start) or start < 0 or math.isnan(seconds) or seconds <= 0:
        raise ValueError(f"a window needs start >= 0 and seconds > 0, got start={start}, seconds={seconds}")
    t = timeline.timestamps
    keep = np.flatnonzero((t >= start - 1e-9) & (t < start + seconds - 1e-9))
    if len(keep) == 0:
        raise ValueError(f"no frame in the window {start:g}-{start + seconds:g} s (the timeline spans "
                         f"{t[0] if len(t) else 0:g}-{t[-1] if len(t) else 0:g} s)")
    return _renumbered(timeline, [timeline.frames[i] for i in keep], t[keep])


def retime(timeline: ExpressionTimeline, speed: float) -> ExpressionTimeline:
    """Played `speed` times as fast (0.5: slowed down twice): the same frames at times t / speed."""
    if not math.isfinite(speed) or speed <= 0:
        raise ValueError(f"speed must be a number > 0, got {speed}")
    return _renumbered(timeline, timeline.frames, timeline.timestamps / speed)


def reverse(timeline: ExpressionTimeline) -> ExpressionTimeline:
    """Played backwards: the last frame first, at times `last - t`."""
    t = timeline.timestamps
    end = float(t[-1]) if len(t) else 0.0
    return _renumbered(timeline, timeline.frames[::-1], end - t[::-1])


def _mirror_names(names: list[str]) -> list[int]:
    """For each name, the position of its mirror image (Left <-> Right; itself where it has no side)."""
    positions = {name: index for index, name in enumerate(names)}
    mirrored = []
    for name in names:
        if name.endswith("Left"):
            other = name[:-4] + "Right"
        elif name.endswith("Right"):
            other = name[:-5] + "Left"
        else:
            other = name
        if other not in positions:
            raise ValueError(f"blendshape {name!r} has no mirror image {other!r} in the timeline")
        mirrored.append(positions[other])
    return mirrored


def mirror(timeline: ExpressionTimeline, frame_width: float) -> ExpressionTimeline:
    """Flipped left to right in a frame `frame_width` pixels wide (the boxes' pixels)."""
    if not math.isfinite(frame_width) or frame_width <= 0:
        raise ValueError(f"frame_width must be the frame's width in pixels (> 0), got {frame_width}")
    swap = _mirror_names(list(timeline.blendshape_names))

    def flipped(frame: FrameExpression) -> FrameExpression:
        negate = lambda value: None if value is None else -value  # noqa: E731
        box = None if frame.box is None else [round(frame_width - frame.box[2], 2), frame.box[1],
                                              round(frame_width - frame.box[0], 2), frame.box[3]]
        shapes = None if frame.blendshapes is None else [frame.blendshapes[j] for j in swap]
        return replace(frame, box=box, blendshapes=shapes, yaw=negate(frame.yaw), roll=negate(frame.roll),
                       eye_open_left=frame.eye_open_right, eye_open_right=frame.eye_open_left)

    return replace(timeline, frames=[flipped(frame) for frame in timeline.frames], models=dict(timeline.models))


def resample(timeline: ExpressionTimeline, num_frames: int) -> ExpressionTimeline:
    """The `num_frames` frames `load_video(num_frames=...)` would sample (repeating frames when there are fewer)."""
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise ValueError(f"num_frames must be a whole number >= 1, got {num_frames!r}")
    if len(timeline) == 0:
        raise ValueError("an empty timeline has no frames to sample")
    return timeline.select_frames(uniform_indices(len(timeline), num_frames))


@dataclass(frozen=True)
class TimelineVariant:
    """One edit of a source clip: a window of it (source seconds; None: all), played at `speed`, maybe reversed and
    mirrored, then sampled to `num_frames` (None: every frame kept)."""

    start: float = 0.0
    seconds: float | None = None
    speed: float = 1.0
    reverse: bool = False
    mirror: bool = False
    num_frames: int | None = None

    def apply(self, timeline: ExpressionTimeline, frame_width: float | None = None) -> ExpressionTimeline:
        if self.mirror and frame_width is None:
            raise ValueError("a mirrored variant needs the frame width (the face track's `width`) to flip the boxes")
        edited = timeline
        if self.start or self.seconds is not None:
            edited = window(edited, self.start, math.inf if self.seconds is None else self.seconds)
        if self.speed != 1.0:
            edited = retime(edited, self.speed)
        if self.reverse:
            edited = reverse(edited)
        if self.mirror:
            edited = mirror(edited, frame_width)
        if self.num_frames is not None:
            edited = resample(edited, self.num_frames)
        return edited

    def report(self, source: ExpressionReport | ExpressionTimeline, frame_width: float | None = None,
               config: ExpressionConfig | None = None) -> ExpressionReport:
        """The variant's timeline with its events and measured caption derived again (the source report's config
        unless `config` is given)."""
        if isinstance(source, ExpressionReport):
            timeline, person_id, config = source.timeline, source.person_id, config or source.config
        else:
            timeline, person_id = source, None
        return report_from_timeline(self.apply(timeline, frame_width), person_id, config)

    def to_dict(self) -> dict:
        return asdict(self)


def random_variant(
    timeline: ExpressionTimeline,
    rng: np.random.Generator,
    min_seconds: float = 1.5,
    max_seconds: float | None = None,
    speeds: tuple[float, float] = (0.5, 2.0),
    frame_counts: tuple[int, ...] = (8, 12, 16, 24, 32),
    reverse_probability: float = 0.5,
    mirror_probability: float = 0.5,
    whole_probability: float = 0.1,
) -> TimelineVariant:
    """A variant drawn at random: the whole clip (`whole_probability`, or when it is no longer than `min_seconds`)
    or a window of uniformly drawn length (at least `min_seconds`, at most `max_seconds` and the clip) at a uniform
    offset, a log-uniform speed in `speeds`, reversed and mirrored with the given probabilities, sampled to one of
    `frame_counts`."""
    t = timeline.timestamps
    if len(t) == 0:
        raise ValueError("an empty timeline has no variants")
    duration = float(t[-1] - t[0]) + (float(np.median(np.diff(t))) if len(t) > 1 else 0.0)
    if rng.random() < whole_probability or duration <= min_seconds:
        start, seconds = 0.0, None
    else:
        seconds = float(rng.uniform(min_seconds, min(duration, max_seconds or duration)))
        start = float(t[0] + rng.uniform(0.0, duration - seconds))
    speed = float(np.exp(rng.uniform(np.log(speeds[0]), np.log(speeds[1]))))
    return TimelineVariant(start=round(start, 3), seconds=None if seconds is None else round(seconds, 3),
                           speed=round(speed, 3), reverse=bool(rng.random() < reverse_probability),
                           mirror=bool(rng.random() < mirror_probability),
                           num_frames=int(rng.choice(frame_counts)))


def concatenate(timelines: list[ExpressionTimeline]) -> ExpressionTimeline:
    """The timelines one after another, as if cut together into one file: each starts one of its own sampling steps
    after the previous one's last frame; frames are numbered 0..n-1."""
    if not timelines:
        raise ValueError("nothing to concatenate")
    names = {tuple(timeline.blendshape_names) for timeline in timelines}
    if len(names) > 1:
        raise ValueError("the timelines were measured with different blendshape sets")
    frames, times, offset = [], [], 0.0
    for timeline in timelines:
        t = timeline.timestamps
        if len(t) == 0:
            continue
        step = float(np.median(np.diff(t))) if len(t) > 1 else 0.1
        frames += timeline.frames
        times += list(t - t[0] + offset)
        offset = times[-1] + step
    if not frames:
        raise ValueError("the timelines have no frames")
    return _renumbered(timelines[0], frames, times)
