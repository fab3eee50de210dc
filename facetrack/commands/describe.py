"""`facetrack describe VIDEO --model PATH_OR_ID`: caption the main character's facial expression dynamics."""

from __future__ import annotations

import argparse
import json
import sys


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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..cli import UserError
    from ..inference import DEFAULT_PROMPT, load_captioner
    from ..processing.video_io import probe_video

    if args.frames is not None and args.frames < 1:
        raise UserError(f"--frames must be at least 1, got {args.frames}")
    # The video is checked before the model loads (seconds to minutes): missing, not a regular file, not a video,
    # frames over the pixel limit, truncated. A VideoDecodeError is one line, exit code 2.
    probe_video(args.video, count_frames=True)
    try:
        captioner = load_captioner(args.model, device=args.device)
    except OSError as error:
        raise UserError(f"cannot load the model {args.model!r}: {str(error).splitlines()[0]}") from error
    prompt = args.prompt or DEFAULT_PROMPT
    pieces, face_track = captioner.stream_caption(args.video, prompt, args.frames, args.max_new_tokens)
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
            "timestamps": [frame["timestamp"] for frame in face_track["frames"]],
            "face_track": face_track,
        }
        print(json.dumps(result, indent=2))
    else:
        print()
    return 0
