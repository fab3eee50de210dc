"""`facetrack track VIDEO`: find every person, follow the main character's face (or a chosen person's), measure their
expressions; optionally write JSON, the per-frame expression table (CSV / Parquet), an overlay, crops. VIDEO may
be a photo: one frame, every face found, the main character chosen by the same rule."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from facetrack.commands.person_options import add_person_arguments, target_from_args

DECODE_MAX_SIDE = 1920  # longest side of the frames tracked, overlaid and cropped (the JSON is in source pixels)
TABLE_FORMATS = (".csv", ".parquet")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "track",
        help="track faces in a video (or a photo) and pick the main character (or a chosen person)",
        description="Sample frames from VIDEO, detect and track every face, tell the people apart (face identity "
        "through cuts and crossings), choose the main character (presence x face size x closeness to the centre) or "
        "the person asked for, measure their facial expressions (landmarks + an emotion classifier: events and a "
        "measured caption), and print a short summary. A photo is one frame: every face is found and the main "
        "character chosen the same way.",
    )
    parser.add_argument("video", help="video file (mp4, mov, mkv, webm, ...) or a photo (jpg, png, ...)")
    parser.add_argument("--frames", type=int, default=32, metavar="N",
                        help="number of frames sampled uniformly over the video (default 32; with --fps: at most N)")
    parser.add_argument("--fps", type=float, default=None, metavar="F",
                        help="sample F frames per second instead of a fixed count (at most every frame once)")
    parser.add_argument("--detector", default="retinaface", metavar="NAME",
                        help="face detector: retinaface (default) or yunet")
    parser.add_argument("--interpolate-gap", type=int, default=0, metavar="K",
                        help="fill gaps of at most K frames in the main face's track by interpolation "
                        "(flagged interpolated in the JSON; default 0 = leave them missing)")
    add_person_arguments(parser)
    parser.add_argument("--each-person", action="store_true",
                        help="measure the expressions of every person visible in at least --min-share of the sampled "
                        "frames (every face of a photo), not only the followed one's")
    parser.add_argument("--min-share", type=float, default=0.25, metavar="S",
                        help="with --each-person: the share of sampled frames a person must be visible in "
                        "(0-1, default 0.25)")
    parser.add_argument("--out", default=None, metavar="track.json", help="write the track result as JSON here")
    parser.add_argument("--csv", default=None, metavar="FILE",
                        help="write the measured expressions as a table, one row per sampled frame of each measured "
                        "person (time, frame, person, box, 52 blendshapes, head pose, eye/mouth/brow measures, "
                        "emotions): CSV, or Parquet when FILE ends in .parquet")
    parser.add_argument("--render", default=None, metavar="overlay.mp4",
                        help="write an H.264 .mp4 of the sampled frames with every person drawn and the followed one marked")
    parser.add_argument("--crops", default=None, metavar="DIR",
                        help="write the followed person's face crop of each sampled frame as PNGs into DIR")
    parser.add_argument("--crop-size", type=int, default=224, metavar="PX", help="side of the face crops (default 224)")
    parser.add_argument("--no-expressions", action="store_true",
                        help="skip the expression timeline (tracking only; the JSON then has no expressions)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import math

    from facetrack.commands.cli import UserError

    if args.frames is not None and args.frames < 1:
        raise UserError(f"--frames must be at least 1, got {args.frames}")
    if args.fps is not None and not (math.isfinite(args.fps) and args.fps > 0):  # nan, inf: refused here too
        raise UserError(f"--fps must be a finite number of frames per second > 0, got {args.fps}")
    if args.interpolate_gap < 0:
        raise UserError(f"--interpolate-gap must be >= 0, got {args.interpolate_gap}")
    if args.crop_size < 8:
        raise UserError(f"--crop-size must be at least 8, got {args.crop_size}")
    if not 0.0 <= args.min_share <= 1.0:
        raise UserError(f"--min-share must be between 0 and 1, got {args.min_share}")
    if args.csv is not None:
        if Path(args.csv).suffix.lower() not in TABLE_FORMATS:
            raise UserError(f"--csv {args.csv}: the file name must end in .csv or .parquet (the table's format)")
        if args.no_expressions:
            raise UserError("--csv writes the measured expressions: it cannot be combined with --no-expressions")

    target = target_from_args(args)
    if args.each_person and target is not None:
        raise UserError("--each-person measures everyone: it cannot be combined with --person/--person-box/"
                        "--person-image")
    from facetrack.faces.tracking import FaceTracker
    from facetrack.analysis.video_analysis import analyze_video

    # Frames over 1920 px are decoded shrunk (the detector works at 640 px; a 4K clip's 32 frames would take 2 GB);
    # the JSON gives boxes in the video's own pixels, and a --person-box is read in those too.
    tracker = FaceTracker(args.detector, interpolate_max_gap=args.interpolate_gap)
    analysis = analyze_video(args.video, num_frames=args.frames, fps=args.fps, max_side=DECODE_MAX_SIDE,
                             tracker=tracker, target=target, expressions=not args.no_expressions)
    clip, result = analysis.clip, analysis.track
    size = f"{clip.source_width or clip.width}x{clip.source_height or clip.height}"
    if clip.still_image:
        print(f"{args.video}: a still image ({size}, detector {result.detector}): one frame")
    else:
        print(f"{args.video}: {len(clip)} frames sampled ({size}, {clip.duration or 0:.1f} s, "
              f"detector {result.detector})")
    print(result.summary())
    print(result.persons_line())
    if result.identity.get("note") and not clip.still_image:  # a photo's faces are never joined: nothing to tell
        print(f"note: {result.identity['note']}")
    print(faces_line(analysis.source_track()) if clip.still_image else face_strip(result))
    people = analysis.each_person(args.min_share) if args.each_person else [analysis]
    if analysis.expression_problem:
        print(f"note: expressions skipped: {analysis.expression_problem}")
    elif not args.no_expressions:
        for person in people:
            if person.expressions is not None:
                print(expressions_line(person.expressions))
                print(person.expressions.caption)
        if not people:
            print(f"expressions: nobody is visible in {args.min_share:.0%} of the frames")
    measured = people[0] if people else analysis  # each_person's analyses share one table of everyone measured

    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(analysis.source_track().to_dict(), indent=1))
        print(f"wrote {out}")
    if args.csv:
        if analysis.expression_problem:
            raise UserError(f"--csv: no expression table to write: {analysis.expression_problem}")
        table = measured.to_pandas()
        print(f"wrote {write_table(table, Path(args.csv))} ({len(table)} rows: one per sampled frame of "
              f"{table['person_id'].nunique()} person(s))")
    if args.render:
        from facetrack.analysis.overlay import write_overlay_video

        print(f"wrote {write_overlay_video(clip.frames, result, args.render)}")
    if args.crops:
        from PIL import Image

        crops_dir = Path(args.crops)
        crops_dir.mkdir(parents=True, exist_ok=True)
        crops = analysis.crops(size=args.crop_size)
        written = 0
        for t, (crop, frame) in enumerate(zip(crops, result.frames)):
            if frame.box is not None:
                Image.fromarray(crop).save(crops_dir / f"face_{t:03d}_frame{frame.frame_index:06d}.png")
                written += 1
        print(f"wrote {written} face crops to {crops_dir}")
    return 0


def face_strip(result) -> str:
    """One character per sampled frame: M (the main character) or C (a chosen person, as the overlay labels them)
    where the followed face was detected, i = interpolated, . = missing."""
    main = result.person_id == result.main_person_id
    mark = "M" if main else "C"
    strip = "".join("." if f.box is None else "i" if f.interpolated else mark for f in result.frames)
    who = "main" if main else f"chosen (person {result.person_id})"
    return f"{who} face per frame: {strip}"


def faces_line(result) -> str:
    """A photo's faces: "faces: person 1 at 212,140-300,250, person 2 (main) at ..." (pixels of the photo)."""
    parts = []
    for pid, person in sorted(result.persons.items()):
        x1, y1, x2, y2 = (round(v) for v in person.boxes[0])
        role = " (main)" if pid == result.main_person_id else " (chosen)" if pid == result.person_id else ""
        parts.append(f"person {pid}{role} at {x1},{y1}-{x2},{y2}")
    return "faces: " + (", ".join(parts) if parts else "none")


def write_table(table, path: Path) -> Path:
    """The table as CSV or Parquet (by the file's extension), written whole or not at all: into a temporary file
    beside it, renamed into place when complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=path.suffix)
    os.close(descriptor)
    try:
        if path.suffix.lower() == ".parquet":
            table.to_parquet(staging, index=False)
        else:
            table.to_csv(staging, index=False)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return path


def expressions_line(report) -> str:
    """"expressions of person 1: measured in 31/32 frames; 4 events: smile_start 1.2 s, blink 3.4 s, ..."."""
    measured = int(report.timeline.measured.sum())
    events = ", ".join(f"{event.kind} {event.time:.1f} s" for event in report.events) or "none"
    return (f"expressions of person {report.person_id}: measured in {measured}/{len(report.timeline)} frames; "
            f"{len(report.events)} event(s): {events}")
