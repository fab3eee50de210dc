"""`facetrack describe VIDEO --model PATH_OR_ID`: caption the main character's facial expression dynamics (or a chosen
person's, or every person's)."""

from __future__ import annotations

import argparse
import json
import sys

from facetrack.person_options import add_person_arguments, target_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "describe",
        help="caption how the main character's facial expression changes in a video",
        description="Track the main character's face in VIDEO and stream the model's caption of their facial "
        "expression dynamics. With --json, print one JSON object (caption, face track, timestamps) instead.",
    )
    parser.add_argument("video", help="video file (mp4, mov, ...)")
    parser.add_argument("--model", required=True, help="FaceTrack-MM model: a local Hub-layout folder or a Hub id")
    parser.add_argument("--prompt", default=None, help="instruction (default: the FEC-Bench evaluation prompt)")
    parser.add_argument("--frames", type=int, default=None, help="frames to sample (default: the processor's)")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="longest caption in tokens (default 256)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--json", action="store_true", help="print caption + face track + timestamps as JSON")
    add_person_arguments(parser)
    parser.add_argument("--each-person", action="store_true",
                        help="caption every person visible in at least --min-share of the sampled frames, one "
                        "caption each (one batch)")
    parser.add_argument("--min-share", type=float, default=0.25, metavar="S",
                        help="with --each-person: the share of sampled frames a person must be visible in "
                        "(0-1, default 0.25)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..cli import UserError
    from ..inference import DEFAULT_PROMPT, load_captioner
    from ..processing.video_io import probe_video

    if args.frames is not None and args.frames < 1:
        raise UserError(f"--frames must be at least 1, got {args.frames}")
    if not 0.0 <= args.min_share <= 1.0:
        raise UserError(f"--min-share must be between 0 and 1, got {args.min_share}")
    target = target_from_args(args)
    if args.each_person and target is not None:
        raise UserError("--each-person captions everyone: it cannot be combined with --person/--person-box/--person-image")
    # The video is checked before the model loads (seconds to minutes): missing, not a regular file, not a video,
    # frames over the pixel limit, truncated. A VideoDecodeError is one line, exit code 2.
    probe_video(args.video, count_frames=True)
    try:
        captioner = load_captioner(args.model, device=args.device)
    except OSError as error:
        raise UserError(f"cannot load the model {args.model!r}: {str(error).splitlines()[0]}") from error
    prompt = args.prompt or DEFAULT_PROMPT
    if args.each_person:
        return describe_each_person(captioner, args, prompt)
    pieces, face_track = captioner.stream_caption(args.video, prompt, args.frames, args.max_new_tokens, target=target)
    caption = []
    for piece in pieces:
        caption.append(piece)
        if not args.json:
            sys.stdout.write(piece)
            sys.stdout.flush()
    if args.json:
        result = {
            "video": args.video,
            "model": args.model,
            "prompt": prompt,
            "caption": "".join(caption).strip(),
            "person_id": face_track["person_id"],
            "timestamps": [frame["timestamp"] for frame in face_track["frames"]],
            "face_track": face_track,
        }
        print(json.dumps(result, indent=2))
    else:
        print()
    return 0


def describe_each_person(captioner, args: argparse.Namespace, prompt: str) -> int:
    entries = captioner.caption_each_person(args.video, prompt, args.frames, args.max_new_tokens, args.min_share)
    if args.json:
        persons = [{**entry, "timestamps": [frame["timestamp"] for frame in entry["face_track"]["frames"]]}
                   for entry in entries]
        print(json.dumps({"video": args.video, "model": args.model, "prompt": prompt, "min_share": args.min_share,
                          "persons": persons}, indent=2))
        return 0
    if not entries:
        print(f"no person is visible in at least {args.min_share:.0%} of the sampled frames")
    for entry in entries:
        role = "main character, " if entry["is_main"] else ""
        print(f"person {entry['person_id']} ({role}visible in {entry['share']:.0%} of the frames): {entry['caption']}")
    return 0
