"""`facetrack dataset build`: turn FDA/DFEC annotations + videos into a Hub-ready `datasets` folder."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dataset",
        help="build (and optionally upload) the FDA/DFEC dataset with precomputed face tracks",
        description="Dataset tools for FDA/DFEC-format annotations.",
    )
    actions = parser.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build",
        help="build a Hub-ready dataset folder (parquet + dataset card) with face tracks precomputed",
        description=(
            "Read a JSON list of {id, video, caption} (video paths relative to --video-root), track the main "
            "character's face in every clip (and measure their expressions), and write parquet shards with the videos embedded, a dataset card "
            "(README.md) and build_report.json (items dropped because their video is missing or unreadable, items "
            "kept without a face). Load the result with datasets.load_dataset(OUT)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    build.add_argument("annotations", help="annotation JSON file: a list of {id, video, caption}")
    build.add_argument("--video-root", required=True, help="folder the annotation video paths are relative to")
    build.add_argument("--out", required=True, help="output dataset folder (created; a split is replaced if rebuilt, "
                       "facetrack's other splits are kept)")
    build.add_argument("--overwrite", action="store_true",
                       help="replace a README.md / build_report.json in --out that facetrack did not write (default: "
                       "refuse); files facetrack did not write are never deleted")
    build.add_argument("--split", default="train", help="split name of these annotations (train, test, ...)")
    build.add_argument("--num-frames", type=int, default=32, help="frames sampled per clip for the face track")
    build.add_argument("--num-proc", type=int, default=1, help="worker processes for decoding + face tracking")
    build.add_argument("--detector", default="retinaface", help="face detector name (see facetrack.faces.detection)")
    build.add_argument("--license", default="other", help="license identifier written in the dataset card")
    build.add_argument("--max-shard-size", default="500MB", help="largest parquet shard (videos included)")
    build.add_argument("--no-expressions", action="store_true",
                       help="store face tracks without the main character's measured expressions (default: stored "
                       "when the optional expression packages are installed)")
    build.add_argument("--push", metavar="REPO_ID", help="upload the folder to this Hub dataset repo when done")
    build.add_argument("--private", action="store_true", help="create the Hub repo as private (with --push)")
    build.set_defaults(func=run_build)


def run_build(args: argparse.Namespace) -> int:
    from facetrack.commands.cli import UserError
    from facetrack.data.build import DatasetBuildError, build_dataset, push_dataset

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
        )
    except DatasetBuildError as error:
        raise UserError(str(error)) from error
    print(
        f"{args.split}: {report.num_written}/{report.num_input} rows written to {args.out} "
        f"({len(report.dropped)} dropped, {len(report.no_face)} without a face; see {args.out}/build_report.json)"
    )
    print(f"expressions: {report.expressions}")
    if args.push:
        url = push_dataset(args.out, args.push, private=args.private)
        print(f"uploaded to {url}")
    return 0
