"""TEM speed with the default offline backends (rule extractor + lexicon relations, all-MiniLM-L6-v2 only for
events outside the lexicon), and threshold calibration.

    python benchmarks/bench_metric.py               # cold: a fresh process loads everything and scores 800 pairs
    python benchmarks/bench_metric.py --warm        # pairs per second once loaded
    python benchmarks/bench_metric.py --limit 100   # a quicker run
    python benchmarks/bench_metric.py --calibrate   # sweep the embedding's entailment threshold on its labelled pairs

Each reference is scored against the reference of the next clip (shifted predictions: two different captions).
Cold timing runs in a new Python process and includes importing, loading the metric and the MiniLM weights; it
prints wall time and CPU seconds (user + system, all threads), since wall time on a shared machine depends on load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

START = time.perf_counter()

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from facetrack.evaluation.tem import calibration as tem_calibration  # noqa: E402
from facetrack.evaluation.tem import events as tem_events  # noqa: E402
from facetrack.evaluation.tem import lexicon as tem_lexicon  # noqa: E402
from facetrack.evaluation.tem import relations as tem_relations  # noqa: E402
from facetrack.evaluation.tem.metric import load_tem_metric  # noqa: E402

ANNOTATIONS = Path(os.environ.get("FACETRACK_SHARED_DIR", REPO_ROOT.parent / "shared")) / "data" / "dfec_test.json"


def load_pairs(limit: int | None) -> tuple[list[str], list[str]]:
    if not ANNOTATIONS.is_file():
        sys.exit(f"FEC-Bench annotations not found at {ANNOTATIONS} (set FACETRACK_SHARED_DIR)")
    references = [item["caption"] for item in json.loads(ANNOTATIONS.read_text())][:limit]
    return references[1:] + references[:1], references


def cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def cold_worker(limit: int | None) -> None:
    """Runs in the fresh process: everything from here on (imports included) is in the figures."""
    predictions, references = load_pairs(limit)
    metric = load_tem_metric()
    loaded = time.perf_counter() - START
    result = metric.compute(predictions=predictions, references=references)
    wall, cpu = time.perf_counter() - START, cpu_seconds()  # the figures stop here; what follows is diagnostics
    relations = tem_relations
    classifier = next(b for k, b in metric._backends.items() if k[0] == "relation")
    near = count_near_threshold(metric, predictions, references, classifier)
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, "load_s": loaded, "pairs": len(references),
                      "fallback_pairs": classifier.num_fallback_pairs, "near_threshold": near,
                      "threshold": relations.ENTAILMENT_THRESHOLD, "scores": result}))


def count_near_threshold(metric, predictions, references, classifier) -> int:
    """Embedding-decided pairs whose cosine lies within 0.001 of a threshold (library versions could flip them)."""
    events = tem_events.RuleEventExtractor()
    parse = tem_lexicon.parse_event
    thresholds = (classifier.fallback.entailment_threshold, classifier.fallback.contradiction_threshold)
    near = 0
    for prediction, reference in zip(predictions, references):
        pred, ref = events.extract_one(prediction), events.extract_one(reference)
        pairs = [(p, r) for p in pred for r in ref if classifier.needs_embedding(parse(p.text), parse(r.text))]
        if pairs:
            vectors = classifier.fallback.embed([t for pair in pairs for t in (pair[0].text, pair[1].text)])
            near += sum(any(abs(float(vectors[p.text] @ vectors[r.text]) - t) < 0.001 for t in thresholds)
                        for p, r in pairs)
    return near


def cold(limit: int | None) -> None:
    started = time.perf_counter()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    completed = subprocess.run([sys.executable, __file__, "--worker"] + (["--limit", str(limit)] if limit else []),
                               capture_output=True, text=True, env=env, check=False)
    if completed.returncode != 0:
        sys.exit(completed.stderr[-2000:])
    figures = json.loads(completed.stdout.strip().splitlines()[-1])
    total = time.perf_counter() - started
    load = os.getloadavg()[0]
    print(f"TEM cold, default backends, {figures['pairs']} FEC-Bench pairs (each reference vs the next clip's), "
          f"new process from start to scores: {figures['wall_s']:.1f} s wall, {figures['cpu_s']:.1f} CPU s "
          f"(of which importing + loading the metric {figures['load_s']:.1f} s wall; load average {load:.1f} on "
          f"{os.cpu_count()} cores; with interpreter start-up and the diagnostics below: {total:.1f} s)")
    print(f"  pairs decided by the embedding (an event outside the lexicon): {figures['fallback_pairs']}; "
          f"of them within 0.001 of a threshold: {figures['near_threshold']}")
    print("  scores: " + ", ".join(f"{k}={v:.3f}" for k, v in figures["scores"].items()))


def throughput(limit: int | None) -> None:
    predictions, references = load_pairs(limit)
    metric = load_tem_metric()
    start = time.perf_counter()
    metric.compute(predictions=predictions[:2], references=references[:2])  # loads MiniLM
    load_seconds = time.perf_counter() - start
    start, cpu = time.perf_counter(), cpu_seconds()
    result = metric.compute(predictions=predictions, references=references)
    seconds = time.perf_counter() - start
    print(f"TEM default backends, {len(references)} FEC-Bench caption pairs (each reference vs the next clip's)")
    print(f"  first call (loads all-MiniLM-L6-v2): {load_seconds:.1f} s")
    print(f"  scoring: {seconds:.1f} s = {len(references) / seconds:.1f} pairs/s ({cpu_seconds() - cpu:.1f} CPU s)")
    print("  scores: " + ", ".join(f"{k}={v:.3f}" for k, v in result.items()))


def calibrate() -> None:
    metric = load_tem_metric()
    relations = tem_relations
    pairs = tem_calibration.EMBEDDING_PAIRS
    classifier = relations.SimilarityRelationClassifier()
    classifier.embed([text for a, b, _ in pairs for text in (a, b)])  # one batch; similarity() then reads the cache
    similarities = [float(classifier.similarity([a], [b])[0, 0]) for a, b, _ in pairs]
    print(f"{len(pairs)} labelled pairs of the embedding (tem_calibration.EMBEDDING_PAIRS); 3-way accuracy of relation='minilm':")
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
    parser.add_argument("--warm", action="store_true", help="pairs per second in this process, once loaded")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.calibrate:
        calibrate()
    elif args.worker:
        cold_worker(args.limit)
    elif args.warm:
        throughput(args.limit)
    else:
        cold(args.limit)


if __name__ == "__main__":
    main()
