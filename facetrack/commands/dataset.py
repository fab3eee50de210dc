"""`facetrack dataset build`: turn FDA/DFEC annotations + videos, or any folder of unlabelled videos, into a
Hub-ready `datasets` folder."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dataset",
        help="build (and optionally upload) a dataset of captioned face videos with precomputed face tracks",
        description="Dataset tools for FDA/DFEC-format annotations and for unlabelled videos.",
    )
    actions = parser.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build",
        help="build a Hub-ready dataset folder (parquet + dataset card) with face tracks precomputed",
        description=(
            "From an annotation file: read a JSON list of {id, video, caption} (video paths relative to "
            "--video-root), track the main character's face in every video (and measure their expressions), one "
            "row per item with its human caption. Or from --videos (a folder, searched recursively, or a text file "
            "listing videos): cut each video into clips that never span a shot cut, keep those where the main face "
            "is seen, and caption each by its measured expressions (optionally rewritten by a chat model: "
            "--rewrite-with). Writes parquet shards with the videos embedded, a dataset card (README.md) and "
            "build_report.json (what was left out, and why). Runs in local processes or on a Ray cluster "
            "(--engine ray); a --videos build that is interrupted goes on where it stopped when run again. Load "
            "the result with datasets.load_dataset(OUT)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    build.add_argument("annotations", nargs="?",
                       help="annotation JSON file: a list of {id, video, caption} (human captions); or use --videos")
    build.add_argument("--videos", metavar="DIR_OR_LIST",
                       help="unlabelled videos: a folder (searched recursively by file extension) or a text file "
                       "listing one video per line; each is cut into clips captioned by their measured expressions")
    build.add_argument("--video-root", help="folder the annotation's (or the --videos list's) video paths are "
                       "relative to (required with an annotation file; default for a list: the list's folder)")
    build.add_argument("--out", required=True, help="output dataset folder (created; a split is replaced if rebuilt, "
                       "facetrack's other splits are kept)")
    build.add_argument("--overwrite", action="store_true",
                       help="replace a README.md / build_report.json in --out that facetrack did not write (default: "
                       "refuse); files facetrack did not write are never deleted")
    build.add_argument("--split", default="train", help="split name of these annotations (train, test, ...)")
    build.add_argument("--num-frames", type=int, default=32, help="frames sampled per clip for the face track")
    clips = build.add_argument_group("clips (with --videos)")
    clips.add_argument("--clip-seconds", type=float, default=4.0, help="length of each clip")
    clips.add_argument("--clips-per-video", type=int, default=4,
                       help="most clips cut from one video (spread over it, never overlapping)")
    clips.add_argument("--min-face-share", type=float, default=0.75,
                       help="skip clips where the main face is seen in fewer of the sampled frames than this")
    clips.add_argument("--rewrite-with", metavar="MODEL",
                       help="rewrite each measured caption in FDA style with this chat model, given only the "
                       "measured events: a local transformers model path (or .gguf file), or a model name at "
                       "--rewrite-base-url")
    clips.add_argument("--rewrite-base-url", metavar="URL",
                       help="OpenAI-compatible endpoint for --rewrite-with (vLLM, llama.cpp, Ollama, ...); its key "
                       "from $OPENAI_API_KEY")
    engine = build.add_argument_group("engine")
    engine.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local: worker processes on this machine; ray: Ray Data actors on a Ray cluster "
                        '(pip install "facetrack-mm[ray]")')
    engine.add_argument("--num-proc", type=int, default=None,
                        help="workers: local processes (default 1) or Ray actors (default: one per CPU of the "
                        "cluster)")
    engine.add_argument("--ray-address", metavar="ADDRESS",
                        help="join this running Ray cluster ('auto': the one `ray start` made on this machine); "
                        "default: start a local one for the build")
    build.add_argument("--detector", default="retinaface", help="face detector name (see facetrack.faces.detection)")
    build.add_argument("--license", default="other", help="license identifier written in the dataset card")
    build.add_argument("--max-shard-size", default="500MB", help="largest parquet shard (videos included)")
    build.add_argument("--no-expressions", action="store_true",
                       help="store face tracks without the main character's measured expressions (default: stored "
                       "when the optional expression packages are installed; --videos needs them)")
    build.add_argument("--push", metavar="REPO_ID", help="upload the folder to this Hub dataset repo when done")
    build.add_argument("--private", action="store_true", help="create the Hub repo as private (with --push)")
    build.set_defaults(func=run_build)


def run_build(args: argparse.Namespace) -> int:
    from facetrack.commands.cli import UserError
    from facetrack.data.build import DatasetBuildError, build_dataset, push_dataset

    if (args.annotations is None) == (args.videos is None):
        raise UserError("give an annotation file (human captions) or --videos DIR (unlabelled videos)"
                        + (", not both" if args.videos else ""))
    if args.annotations is not None and args.video_root is None:
        raise UserError("an annotation file needs --video-root: the folder its video paths are relative to")
    if args.rewrite_with and args.annotations is not None:
        raise UserError("--rewrite-with rewrites measured captions: it goes with --videos")
    if args.rewrite_base_url and not args.rewrite_with:
        raise UserError("--rewrite-base-url needs --rewrite-with MODEL (the model name at that endpoint)")
    rewriter = None
    if args.rewrite_with:
        from facetrack.inference.caption_rewriter import CaptionRewriter

        rewriter = CaptionRewriter(args.rewrite_with, base_url=args.rewrite_base_url)

    try:
        report = build_dataset(
            args.annotations,
            video_root=args.video_root,
            out_dir=args.out,
            split=args.split,
            num_frames=args.num_frames,
            num_proc=args.num_proc,
            detector=args.detector,
            license=args.license,
            max_shard_size=args.max_shard_size,
            expressions=not args.no_expressions,
            overwrite=args.overwrite,
            videos=args.videos,
            clip_seconds=args.clip_seconds,
            clips_per_video=args.clips_per_video,
            min_face_share=args.min_face_share,
            rewriter=rewriter,
            engine=args.engine,
            ray_address=args.ray_address,
        )
    except DatasetBuildError as error:
        raise UserError(str(error)) from error
    if report.input == "videos":
        sources = ", ".join(f"{count} {source}" for source, count in sorted(report.caption_sources.items()))
        skipped = ", ".join(f"{count} {reason}" for reason, count in sorted(report.skipped.items())) or "none"
        print(f"{args.split}: {report.num_written} clips ({sources} captions) from {report.num_input} videos written "
              f"to {args.out}; left out: {skipped} (see {args.out}/build_report.json)")
        if report.reused:
            print(f"resumed: {report.reused} clip(s) were finished by an earlier, interrupted build")
    else:
        print(
            f"{args.split}: {report.num_written}/{report.num_input} rows written to {args.out} "
            f"({len(report.dropped)} dropped, {len(report.no_face)} without a face; see {args.out}/build_report.json)"
        )
    print(f"expressions: {report.expressions}")
    if args.push:
        url = push_dataset(args.out, args.push, private=args.private)
        print(f"uploaded to {url}")
    return 0
