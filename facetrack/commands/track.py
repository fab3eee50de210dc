"""`facetrack track VIDEO`: find every person, follow the main character's face (or a chosen person's), measure their
expressions; optionally write JSON, an overlay, crops."""

from __future__ import annotations

import argparse

from facetrack.commands.person_options import add_person_arguments, target_from_args

DECODE_MAX_SIDE = 1920  # longest side of the frames tracked, overlaid and cropped (the JSON is in source pixels)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "track",
        help="track faces in a video and pick the main character (or a chosen person)",
        description="Sample frames from VIDEO, detect and track every face, tell the people apart (face identity "
        "through cuts and crossings), choose the main character (presence x face size x closeness to the centre) or "
        "the person asked for, measure their facial expressions (landmarks + an emotion classifier: events and a "
        "measured caption), and print a short summary.",
    )
    parser.add_argument("video", help="video file (mp4, mov, mkv, webm, ...)")
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
    parser.add_argument("--out", default=None, metavar="track.json", help="write the track result as JSON here")
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
    from pathlib import Path

    from facetrack.commands.cli import UserError

    if args.frames is not None and args.frames < 1:
        raise UserError(f"--frames must be at least 1, got {args.frames}")
    if args.fps is not None and not (math.isfinite(args.fps) and args.fps > 0):  # nan, inf: refused here too
        raise UserError(f"--fps must be a finite number of frames per second > 0, got {args.fps}")
    if args.interpolate_gap < 0:
        raise UserError(f"--interpolate-gap must be >= 0, got {args.interpolate_gap}")
    if args.crop_size < 8:
        raise UserError(f"--crop-size must be at least 8, got {args.crop_size}")

    target = target_from_args(args)
    from facetrack.faces.tracking import FaceTracker
    from facetrack.analysis.video_analysis import analyze_video

    # Frames over 1920 px are decoded shrunk (the detector works at 640 px; a 4K clip's 32 frames would take 2 GB);
    # the JSON gives boxes in the video's own pixels, and a --person-box is read in those too.
    tracker = FaceTracker(args.detector, interpolate_max_gap=args.interpolate_gap)
    analysis = analyze_video(args.video, num_frames=args.frames, fps=args.fps, max_side=DECODE_MAX_SIDE,
                             tracker=tracker, target=target, expressions=not args.no_expressions)
    clip, result = analysis.clip, analysis.track
    print(f"{args.video}: {len(clip)} frames sampled ({clip.source_width or clip.width}x"
          f"{clip.source_height or clip.height}, {clip.duration or 0:.1f} s, detector {result.detector})")
    print(result.summary())
    print(persons_line(result))
    if result.identity.get("note"):
        print(f"note: {result.identity['note']}")
    # One character per sampled frame: M = the followed face detected, i = interpolated, . = missing.
    strip = "".join("." if f.box is None else "i" if f.interpolated else "M" for f in result.frames)
    print(f"{'main' if result.person_id == result.main_person_id else 'chosen'} face per frame: {strip}")
    if analysis.expression_problem:
        print(f"note: expressions skipped: {analysis.expression_problem}")
    elif analysis.expressions is not None:
        print(expressions_line(analysis.expressions))
        print(analysis.expressions.caption)

    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(analysis.source_track().to_dict(), indent=1))
        print(f"wrote {out}")
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


def persons_line(result) -> str:
    """"persons: 1 (main, 19/32 frames), 2 (13/32 frames); shot cuts at 1.6, 3.1 s"."""
    total = len(result.frames)
    parts = [f"{pid} ({'main, ' if pid == result.main_person_id else ''}{person.num_frames}/{total} frames)"
             for pid, person in sorted(result.persons.items())]
    line = "persons: " + (", ".join(parts) if parts else "none")
    if result.shot_cuts:
        line += "; shot cuts at " + ", ".join(f"{t:.1f}" for t in result.shot_cuts) + " s"
    return line


def expressions_line(report) -> str:
    """"expressions of person 1: measured in 31/32 frames; 4 events: smile_start 1.2 s, blink 3.4 s, ..."."""
    measured = int(report.timeline.measured.sum())
    events = ", ".join(f"{event.kind} {event.time:.1f} s" for event in report.events) or "none"
    return (f"expressions of person {report.person_id}: measured in {measured}/{len(report.timeline)} frames; "
            f"{len(report.events)} event(s): {events}")
