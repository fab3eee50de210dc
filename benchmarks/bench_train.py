"""CPU training throughput of the tiny recipe (configs/tiny_cpu.yaml): face tracks precomputed at dataset build time
(`face_source=precomputed`, the default) vs. detected and tracked on the fly at every step (`face_source=detect`),
and the data path alone (the collator: decode each row's video at its track's frames, crop the faces, tokenise).

    python benchmarks/bench_train.py [--steps 10] [--num-frames 8] [--batch-size 2] [--threads 1] [--collate 40]
                                     [--collator-only]

Uses the real clips in ../shared/media when present (640x360, 30 fps), else synthetic 256 px clips. Prints samples/s
as measured by the Trainer (train_samples_per_second), the speed-up, and the collator's samples/s (median of
`--collate` batches; with the model and trainer out of the way, this is where decoding shows).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
MEDIA_DIR = REPO_ROOT.parent / "shared" / "media"
CAPTIONS = [
    "A young man looks at the camera, then smiles and raises his eyebrows.",
    "A woman frowns at first, then laughs with her mouth wide open.",
    "The man keeps a neutral face and blinks twice.",
    "The woman tilts her head and smiles softly towards the end.",
]


def write_synthetic_clip(path: Path, num_frames: int = 24, size: int = 256) -> None:
    import cv2
    from skimage import data

    image = data.astronaut()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (size, size))
    for t in range(num_frames):
        side = int(512 / (1 + 0.02 * t))
        x0, y0 = (512 - side) // 2, int((512 - side) * 0.3)
        frame = cv2.resize(image[y0 : y0 + side, x0 : x0 + side], (size, size))
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def prepare_dataset(work: Path, num_frames: int) -> tuple[Path, str]:
    from facetrack.data.build import build_dataset

    videos = work / "videos"
    videos.mkdir()
    if (MEDIA_DIR / "single_face.mp4").is_file() and (MEDIA_DIR / "WolfgangLanger_Pexels.mp4").is_file():
        names = ["single_face.mp4", "WolfgangLanger_Pexels.mp4"]
        for name in names:
            shutil.copy(MEDIA_DIR / name, videos / name)
        source = "shared/media clips (640x360)"
    else:
        names = ["synthetic.mp4"]
        write_synthetic_clip(videos / names[0])
        source = "synthetic astronaut clip (256x256)"
    annotations = [
        {"id": str(index), "video": names[index % len(names)], "caption": caption}
        for index, caption in enumerate(CAPTIONS)
    ]
    (work / "train.json").write_text(json.dumps(annotations))
    build_dataset(work / "train.json", videos, work / "dataset", num_frames=num_frames)
    return work / "dataset", source


def measure(mode: str, dataset: Path, base_model: Path, work: Path, args: argparse.Namespace) -> float:
    from facetrack.training import run as training

    script_args, model_args, training_args = training.parse_arguments([
        "--config", str(REPO_ROOT / "configs" / "tiny_cpu.yaml"),
        "--dataset_name", str(dataset),
        "--model_name_or_path", str(base_model),
        "--output_dir", str(work / f"run-{mode}"),
        "--face_source", mode,
        "--max_steps", str(args.steps),
        "--per_device_train_batch_size", str(args.batch_size),
        "--cpu_threads", str(args.threads),
        "--save_strategy", "no",
        "--logging_steps", str(args.steps),
    ])
    result = training.run_training(script_args, model_args, training_args)
    return float(result["train_result"].metrics["train_samples_per_second"])


def measure_collator(dataset: Path, base_model: Path, args: argparse.Namespace) -> float:
    """Samples/s of the collator alone, precomputed face tracks: the median batch over `args.collate` batches."""
    import statistics
    import time

    import torch

    from facetrack.training import run as training

    torch.set_num_threads(args.threads)
    rows, _ = training.load_training_splits(training.ScriptArguments(dataset_name=str(dataset)))
    _, processor = training.load_model_and_processor(str(base_model), training.ModelArguments())
    collator = training.FaceTrackDataCollator(processor)
    seconds = []
    for batch in range(args.collate):
        examples = [rows[(batch * args.batch_size + i) % len(rows)] for i in range(args.batch_size)]
        start = time.perf_counter()
        collator(examples)
        seconds.append(time.perf_counter() - start)
    return args.batch_size / statistics.median(seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="training steps per mode")
    parser.add_argument("--num-frames", type=int, default=8, help="frames per clip")
    parser.add_argument("--batch-size", type=int, default=2, help="per-device batch size")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--collate", type=int, default=40, help="batches timed for the collator alone")
    parser.add_argument("--collator-only", action="store_true", help="time the collator alone, no training runs")
    args = parser.parse_args()

    import transformers

    transformers.logging.set_verbosity_error()
    from facetrack.hub.builders import build_tiny_model

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        work = Path(tmp)
        dataset, source = prepare_dataset(work, args.num_frames)
        base_model = build_tiny_model(work / "tiny-base", tokenizer="trained")
        collator_samples_per_second = measure_collator(dataset, base_model, args)
        results = {} if args.collator_only else {
            mode: measure(mode, dataset, base_model, work, args) for mode in ("precomputed", "detect")
        }

    print(f"\nTiny recipe on CPU ({args.threads} thread(s)), {args.steps} steps, batch {args.batch_size}, "
          f"{args.num_frames} frames/clip, {source}")
    if results:
        print(f"| face tracks | samples/s |\n|---|---|")
        for mode, samples_per_second in results.items():
            print(f"| {mode} | {samples_per_second:.2f} |")
        print(f"precomputed / detected on the fly: {results['precomputed'] / results['detect']:.1f}x")
    print(f"collator alone (precomputed tracks, batch {args.batch_size}): {collator_samples_per_second:.2f} samples/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
