"""TEM throughput with the default offline backends (rule extractor + all-MiniLM-L6-v2), and threshold calibration.

    python benchmarks/bench_metric.py               # caption pairs scored per second on the 800 FEC-Bench references
    python benchmarks/bench_metric.py --limit 100   # a quicker run
    python benchmarks/bench_metric.py --calibrate   # sweep the entailment threshold on the hand-labelled pairs

Each reference is scored against the reference of the next clip (the realistic case: two different captions, so
every event is encoded), in one compute() call after the model is loaded.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from facetrack.fec_bench import load_tem_metric  # noqa: E402

ANNOTATIONS = Path(os.environ.get("FACETRACK_SHARED_DIR", REPO_ROOT.parent / "shared")) / "data" / "dfec_test.json"


def metric_submodule(metric, name: str):
    """A sibling module of the loaded metric (same module objects the metric uses)."""
    return importlib.import_module(type(metric).__module__.rsplit(".", 1)[0] + "." + name)


def throughput(limit: int | None) -> None:
    if not ANNOTATIONS.is_file():
        sys.exit(f"FEC-Bench annotations not found at {ANNOTATIONS} (set FACETRACK_SHARED_DIR)")
    references = [item["caption"] for item in json.loads(ANNOTATIONS.read_text())][:limit]
    predictions = references[1:] + references[:1]
    metric = load_tem_metric()
    start = time.perf_counter()
    metric.compute(predictions=predictions[:2], references=references[:2])  # loads MiniLM
    load_seconds = time.perf_counter() - start
    start = time.perf_counter()
    result = metric.compute(predictions=predictions, references=references)
    seconds = time.perf_counter() - start
    print(f"TEM default backends, {len(references)} FEC-Bench caption pairs (each reference vs the next clip's)")
    print(f"  first call (loads all-MiniLM-L6-v2): {load_seconds:.1f} s")
    print(f"  scoring: {seconds:.1f} s = {len(references) / seconds:.1f} pairs/s")
    print("  scores: " + ", ".join(f"{k}={v:.3f}" for k, v in result.items()))


def calibrate() -> None:
    metric = load_tem_metric()
    relations = metric_submodule(metric, "tem_relations")
    pairs = metric_submodule(metric, "tem_calibration").EMBEDDING_PAIRS
    classifier = relations.SimilarityRelationClassifier()
    classifier.embed([text for a, b, _ in pairs for text in (a, b)])  # one batch; similarity() then reads the cache
    similarities = [float(classifier.similarity([a], [b])[0, 0]) for a, b, _ in pairs]
    print(f"{len(pairs)} labelled pairs; accuracy of the 3-way relation (entailment / neutral / contradiction):")
    best = None
    for step in range(40, 91):
        threshold = step / 100
        classifier.entailment_threshold = threshold
        predicted = [classifier.classify_pair(a, b, s) for (a, b, _), s in zip(pairs, similarities)]
        labels = [label for _, _, label in pairs]
        per_class = {}
        for name in ("entailment", "neutral", "contradiction"):
            members = [p for p, l in zip(predicted, labels) if l == name]
            per_class[name] = sum((p == "entailment") == (name == "entailment") for p in members) / len(members)
        balanced = (per_class["entailment"] + (per_class["neutral"] + per_class["contradiction"]) / 2) / 2
        exact = sum(p == l for p, l in zip(predicted, labels)) / len(labels)
        if best is None or exact > best[1] + 1e-9:
            best = (threshold, exact)
        if step % 5 == 0 or abs(threshold - relations.ENTAILMENT_THRESHOLD) < 1e-9:
            print(f"  threshold {threshold:.2f}: accuracy {exact:.3f}  per class: entailment {per_class['entailment']:.2f} "
                  f"neutral {per_class['neutral']:.2f} contradiction {per_class['contradiction']:.2f}  (balanced {balanced:.3f})")
    print(f"best accuracy {best[1]:.3f} at threshold {best[0]:.2f} (lowest such); shipped: {relations.ENTAILMENT_THRESHOLD}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="only the first N references")
    parser.add_argument("--calibrate", action="store_true", help="sweep the entailment threshold instead")
    args = parser.parse_args()
    calibrate() if args.calibrate else throughput(args.limit)


if __name__ == "__main__":
    main()
