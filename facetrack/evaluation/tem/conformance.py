"""TEM conformance: check an implementation against conformance.json (inputs and expected outputs, 3 decimals).

    python -m facetrack.evaluation.tem.conformance            # check this implementation (exit code 1 on a mismatch)
    python -m facetrack.evaluation.tem.conformance --write    # regenerate the file (maintainers, after a change)

The file is plain JSON so that another implementation can run it: for each case, feed `prediction` and `reference`
to TEM with the default options and compare every number in `expected` to 3 decimals (|got - expected| <= 5e-4), the
stage outputs in `prediction_events` / `reference_events` ([text, phase, segment, core unit or null]) exactly, and the
corpus scores of all cases together in `corpus`. Cases with `needs_embedding: true` hold an event outside the
lexicon, decided by all-MiniLM-L6-v2 (cosine rounded to 4 decimals): they also depend on that model and its
libraries (versions in README.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from facetrack.evaluation.tem.events import RuleEventExtractor
from facetrack.evaluation.tem.lexicon import parse_event
from facetrack.evaluation.tem.metric import load_tem_metric

HERE = Path(__file__).resolve().parent
CONFORMANCE_FILE = HERE / "conformance.json"
SCORE_KEYS = ("tem", "content_precision", "content_recall", "content_f1", "temporal", "num_prediction_events",
              "num_reference_events", "num_prediction_items", "num_reference_items", "num_aligned", "lcs")
CORPUS_KEYS = ("tem", "content_precision", "content_recall", "content_f1", "temporal", "autodq")
TOLERANCE = 5e-4


def load_metric():
    return load_tem_metric()


def run(metric, cases: list[dict]) -> dict:
    """Our outputs for the cases, in the file's format."""
    extractor = RuleEventExtractor()
    parse = parse_event
    result = metric.compute(predictions=[c["prediction"] for c in cases], references=[c["reference"] for c in cases],
                            return_per_sample=True)

    def events(caption: str) -> list:
        found = extractor.extract_one(caption)
        return [[e.text, e.phase, e.segment, parse(e.text).core.unit if parse(e.text).core else None] for e in found]

    out = []
    for case, sample in zip(cases, result["per_sample"]):
        pred_events, ref_events = events(case["prediction"]), events(case["reference"])
        out.append({
            **{k: case[k] for k in ("id", "prediction", "reference")},
            "needs_embedding": any(e[-1] is None for e in pred_events + ref_events) and bool(pred_events and ref_events),
            "prediction_events": pred_events, "reference_events": ref_events,
            "expected": {k: round(sample[k], 3) if isinstance(sample[k], float) else sample[k] for k in SCORE_KEYS},
        })
    return {"cases": out, "corpus": {k: round(result[k], 3) for k in CORPUS_KEYS}}


def compare(expected: dict, got: dict) -> list[str]:
    """Mismatches between the file and this implementation's outputs, one line each."""
    problems = []
    if len(expected["cases"]) != len(got["cases"]):
        problems.append(f"expected {len(expected['cases'])} cases, got {len(got['cases'])}")
    for want, have in zip(expected["cases"], got["cases"]):
        for stage in ("prediction_events", "reference_events"):
            if want[stage] != have[stage]:
                problems.append(f"{want['id']}: {stage} differ: expected {want[stage]}, got {have[stage]}")
        for key, value in want["expected"].items():
            if abs(have["expected"][key] - value) > TOLERANCE:
                problems.append(f"{want['id']}: {key} expected {value}, got {have['expected'][key]}")
    for key, value in expected["corpus"].items():
        if abs(got["corpus"][key] - value) > TOLERANCE:
            problems.append(f"corpus: {key} expected {value}, got {got['corpus'][key]}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="regenerate conformance.json from this implementation")
    args = parser.parse_args()
    data = json.loads(CONFORMANCE_FILE.read_text(encoding="utf-8"))
    got = run(load_metric(), data["cases"])
    if args.write:
        data.update(got)
        CONFORMANCE_FILE.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {len(got['cases'])} cases to {CONFORMANCE_FILE}")
        return 0
    problems = compare(data, got)
    for line in problems:
        print(line)
    print(f"{len(data['cases']) - len({p.split(':')[0] for p in problems})} of {len(data['cases'])} cases conform")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
