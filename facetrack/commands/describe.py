"""`facetrack describe VIDEO [--model PATH_OR_ID]`: describe how the main character's facial expression changes (or a
chosen person's, or every person's): the measured caption, and the model's caption when a model is given."""

from __future__ import annotations

import argparse
import json
import sys
import time

from facetrack.commands.person_options import add_person_arguments, target_from_args

DECODE_MAX_SIDE = 1920  # as `facetrack track`: the frames are shrunk to this before tracking (boxes in video pixels)
DEFAULT_MEASURED_FRAMES = 32  # frames sampled without a model (with one: the processor's count)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "describe",
        help="describe how the main character's facial expression changes in a video",
        description="Track the main character's face in VIDEO and describe their facial expression dynamics. "
        "Without --model: a caption written from the measured events (face landmarks + an emotion classifier, no "
        "language model), labelled as measured. With --model: the model's caption, streamed. With --json, one "
        "JSON object with both captions, the face track (with the measured expressions) and the timestamps.",
    )
    parser.add_argument("video", help="video file (mp4, mov, ...)")
    parser.add_argument("--model", default=None,
                        help="FaceTrack-MM model: a local Hub-layout folder or a Hub id (default: none, the "
                        "measured caption only)")
    parser.add_argument("--prompt", default=None, help="instruction (default: the FEC-Bench evaluation prompt)")
    parser.add_argument("--frames", type=int, default=None,
                        help=f"frames to sample (default: the processor's with --model, else {DEFAULT_MEASURED_FRAMES})")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="longest caption in tokens (default 256)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--json", action="store_true",
                        help="print the captions (model's and measured) + face track + timestamps as JSON")
    parser.add_argument("--no-expressions", action="store_true",
                        help="with --model: do not measure the expressions (no measured caption)")
    add_person_arguments(parser)
    parser.add_argument("--each-person", action="store_true",
                        help="describe every person visible in at least --min-share of the sampled frames, one "
                        "caption each (with --model, one person at a time, each finished caption reported on "
                        "stderr)")
    parser.add_argument("--min-share", type=float, default=0.25, metavar="S",
                        help="with --each-person: the share of sampled frames a person must be visible in "
                        "(0-1, default 0.25)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from facetrack.commands.cli import UserError
    from facetrack.data.schema import FEC_BENCH_PROMPT
    from facetrack.inference.captioner import load_captioner
    from facetrack.expressions.models import ExpressionDependencyError, check_expression_dependencies
    from facetrack.faces.tracking import FaceTracker
    from facetrack.analysis.video_analysis import analyze_video
    from facetrack.hub.sources import ModelSourceError
    from facetrack.video.probe import probe_video

    if args.frames is not None and args.frames < 1:
        raise UserError(f"--frames must be at least 1, got {args.frames}")
    if args.max_new_tokens < 1:
        raise UserError(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    if not 0.0 <= args.min_share <= 1.0:
        raise UserError(f"--min-share must be between 0 and 1, got {args.min_share}")
    if args.model is None and args.no_expressions:
        raise UserError("--no-expressions leaves nothing to describe without --model (the measured caption is "
                        "all describe writes without a model)")
    target = target_from_args(args)
    if args.each_person and target is not None:
        raise UserError("--each-person describes everyone: it cannot be combined with --person/--person-box/--person-image")
    # The video is checked before anything loads (a model takes seconds to minutes): missing, not a regular file,
    # not a video, frames over the pixel limit, truncated. A VideoDecodeError is one line, exit code 2.
    probe_video(args.video, count_frames=True)
    expressions = not args.no_expressions
    if args.model is None:
        try:  # the measured caption is the whole output: without its packages, one line naming the install step
            check_expression_dependencies()
        except ExpressionDependencyError as error:
            raise UserError(str(error)) from error
    captioner = None
    if args.model is not None:
        with Progress(f"loading the model {args.model}"):
            try:
                captioner = load_captioner(args.model, device=args.device)
            except ModelSourceError:
                raise  # already one line naming the model and why
            except OSError as error:
                raise UserError(f"cannot load the model {args.model!r}: {str(error).splitlines()[0]}") from error
    num_frames = args.frames or (captioner.processor.num_frames if captioner else DEFAULT_MEASURED_FRAMES)
    # The model's tracker settings; this package's classes (a processor loaded with trust_remote_code has its own
    # copies of them, and takes these objects as they are: no decoding or tracking again).
    processor = captioner.processor if captioner else None
    tracker = FaceTracker(processor.face_detector, **processor.tracker_options) if processor else FaceTracker()
    stage = f"decoding {num_frames} frames, tracking faces" + (" and measuring expressions" if expressions else "")
    with Progress(stage):
        analysis = analyze_video(args.video, num_frames=num_frames, max_side=DECODE_MAX_SIDE, tracker=tracker,
                                 target=target, expressions=expressions)
    if analysis.expression_problem:  # with a model: its caption still comes, the measured one cannot
        print(f"note: no measured caption: {analysis.expression_problem}", file=sys.stderr)
    prompt = (args.prompt or FEC_BENCH_PROMPT) if captioner else None
    if args.each_person:
        return describe_each_person(captioner, analysis, args, prompt)

    caption = None
    if captioner is not None:
        if args.json:  # (without --json the caption itself streams to stdout)
            progress("captioning (the model generates)...")
        pieces, _ = captioner.stream_caption(analysis.clip, prompt, max_new_tokens=args.max_new_tokens,
                                             face_track=analysis.track)
        text = []
        for piece in pieces:
            text.append(piece)
            if not args.json:
                sys.stdout.write(piece)
                sys.stdout.flush()
        caption = "".join(text).strip()
    if args.json:
        print(json.dumps({"video": args.video, "model": args.model, "prompt": prompt,
                          **entry(analysis, caption)}, indent=2))
    elif captioner is not None:
        print()
    else:
        print(analysis.measured_caption)
    return 0


def entry(analysis, caption: str | None) -> dict:
    """The JSON of one described person: both captions, the face track (video pixels, with the expressions)."""
    track = analysis.source_track().to_dict()
    return {
        "caption": caption,  # the model's (null without --model)
        "measured_caption": analysis.measured_caption,  # written from the measured events, labelled as such
        "person_id": track["person_id"],
        "timestamps": [frame["timestamp"] for frame in track["frames"]],
        "face_track": track,
    }


def describe_each_person(captioner, analysis, args: argparse.Namespace, prompt: str | None) -> int:
    people = analysis.each_person(args.min_share)
    progress(f"{len(people)} person(s) visible in at least {args.min_share:.0%} of the sampled frames")
    captions = [None] * len(people)
    if captioner is not None:
        # One person at a time (on a CPU a batch saves little), so that each finished caption is reported.
        for index, person in enumerate(people):
            with Progress(f"captioning person {person.person_id} ({index + 1}/{len(people)})"):
                (captions[index],), _ = captioner.generate_captions([person.clip], prompt,
                                                                    max_new_tokens=args.max_new_tokens,
                                                                    face_tracks=[person.track])
    total = len(analysis.track.frames)
    entries = [
        {"person_id": person.person_id, "is_main": person.person_id == analysis.track.main_person_id,
         "share": round(person.track.persons[person.person_id].num_frames / total, 4), **entry(person, caption)}
        for person, caption in zip(people, captions)
    ]
    if args.json:
        print(json.dumps({"video": args.video, "model": args.model, "prompt": prompt, "min_share": args.min_share,
                          "persons": entries}, indent=2))
        return 0
    if not entries:
        print(f"no person is visible in at least {args.min_share:.0%} of the sampled frames")
    for item in entries:
        role = "main character, " if item["is_main"] else ""
        text = item["caption"] if captioner is not None else item["measured_caption"]
        print(f"person {item['person_id']} ({role}visible in {item['share']:.0%} of the frames): {text}")
    return 0


def progress(message: str) -> None:
    """Where long work stands, on stderr (stdout holds only the result: the caption, or the JSON)."""
    print(f"describe: {message}", file=sys.stderr, flush=True)


class Progress:
    """A stage of the work: one stderr line when it starts, one with its duration when it ends."""

    def __init__(self, stage: str):
        self.stage = stage

    def __enter__(self) -> "Progress":
        self.start = time.perf_counter()
        progress(f"{self.stage}...")
        return self

    def __exit__(self, error_type, error, traceback) -> None:
        if error_type is None:
            progress(f"{self.stage}: done in {time.perf_counter() - self.start:.1f} s")
