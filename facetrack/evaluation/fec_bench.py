"""FEC-Bench evaluation: annotation and prediction files, every metric of the paper's main table plus BLEU-4 and
METEOR, and the table. The jobs around it live in their own modules:
- generation (caption the test videos, resumably): `facetrack.evaluation.generation`, with any captioner: FaceTrack-MM's
  (`facetrack.inference.captioner`), another transformers video chat model or an OpenAI-compatible endpoint
  (`facetrack.inference.video_chat_models`);
- TEM and AutoDQ: the `evaluate` module in `evaluate_metric/tem/` (one compute gives both), loaded by
  `facetrack.evaluation.tem.metric` for the benchmark and the Space alike;
- CIDEr, ROUGE-L, BLEU-4, METEOR and the WordNet data: `facetrack.evaluation.caption_metrics`;
- the paper's GPT-judged columns (Correctness, Detail, Context, Temporal): `facetrack.evaluation.judge`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path

from facetrack.evaluation.caption_metrics import METEOR_NOTE, caption_metrics
from facetrack.evaluation.errors import BenchmarkError
from facetrack.evaluation.judge import judge_scores
from facetrack.evaluation.tem.metric import load_tem_metric

# FEC-Bench main table from the paper (../shared/PAPER.md). The first four columns are GPT-judged 0-5 scores.
PAPER_COLUMNS = ["Correctness", "Detail", "Context", "Temporal", "CIDEr", "ROUGE-L", "AutoDQ", "TEM"]
JUDGE_COLUMNS = PAPER_COLUMNS[:4]
PAPER_TABLE: dict[str, list[float]] = {
    "GPT-4o": [4.18, 3.98, 4.50, 3.92, 0.225, 0.179, 0.410, 0.291],
    "Claude 3.5 Sonnet": [4.11, 3.97, 4.41, 3.85, 0.212, 0.197, 0.420, 0.298],
    "VideoLLaMA2 7B": [4.17, 4.02, 4.47, 3.93, 0.253, 0.266, 0.344, 0.258],
    "LLaVA-Next-Video 7B": [4.19, 4.07, 4.39, 4.04, 0.250, 0.249, 0.395, 0.276],
    "Qwen2-VL 7B": [4.23, 4.16, 4.52, 4.02, 0.204, 0.233, 0.422, 0.309],
    "Tarsier 7B": [3.59, 3.50, 4.07, 3.41, 0.143, 0.185, 0.415, 0.292],
    "LLaVA-OneVision 7B": [3.68, 3.47, 4.10, 3.42, 0.115, 0.165, 0.379, 0.275],
    "FaceTrack-MM 7B (paper)": [4.42, 4.30, 4.60, 4.26, 0.418, 0.473, 0.483, 0.364],
}
# results.json keys for the paper's columns.
COLUMN_KEYS = {
    "Correctness": "judge_correctness", "Detail": "judge_detail", "Context": "judge_context",
    "Temporal": "judge_temporal", "CIDEr": "cider", "ROUGE-L": "rouge_l", "AutoDQ": "autodq", "TEM": "tem",
}
EXTRA_COLUMNS = {
    "BLEU-4": "bleu4", "METEOR (NLTK)": "meteor", "TEM content F1": "tem_content_f1", "TEM temporal": "tem_temporal",
}
# The chance row: what a caption of the wrong clip scores. Each clip is scored with the reference of the clip listed
# after it in the annotation file as its prediction (clip k gets clip k+1's reference, the last clip the first's): a
# fixed derangement (no clip gets its own reference) that anyone can reproduce from the file.
CHANCE_ROW = "Chance: another clip's reference"
CHANCE_FILE = "chance.json"

# ------------------------------------------------------------------------------------------------ files
def load_annotations(path: str | os.PathLike) -> list[dict]:
    """FEC-Bench annotations (the FDA/DFEC format `facetrack dataset build` reads, with the same checks):
    a JSON list of {"id", "video", "caption"} -> dicts with string ids."""
    from facetrack.data.build import DatasetBuildError, read_annotations

    try:
        items = read_annotations(path)
    except DatasetBuildError as error:
        raise BenchmarkError(str(error)) from error
    return [{"id": item.id, "video": item.video, "caption": item.caption} for item in items]


def read_predictions(path: str | os.PathLike) -> dict[str, str]:
    """Predictions JSONL, one {"id", "prediction", ...} per line -> {id: prediction}."""
    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(f"predictions file not found: {path}")
    predictions: dict[str, str] = {}
    for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise BenchmarkError(f"{path}:{line_number} is not JSON: {error}") from error
        if not isinstance(record, dict) or "id" not in record or not isinstance(record.get("prediction"), str):
            raise BenchmarkError(f"{path}:{line_number} needs an 'id' and a string 'prediction'")
        predictions[str(record["id"])] = record["prediction"]
    return predictions


def split_missing_videos(items: list[dict], video_root: str | os.PathLike) -> tuple[list[dict], list[dict]]:
    """(items whose video file exists under video_root, items whose video is missing)."""
    present, missing = [], []
    for item in items:
        (present if (Path(video_root) / item["video"]).is_file() else missing).append(item)
    return present, missing


# ------------------------------------------------------------------------------------------------ metrics
def score_predictions(predictions: list[str], references: list[str], tem_options: dict | None = None,
                      judge: dict | None = None) -> dict:
    """Every automatic metric of the benchmark (TEM, AutoDQ, ROUGE-L, BLEU-4, METEOR on a 0-1 scale; CIDEr-D on
    pycocoevalcap's 0-10 scale); the judge's 0-5 columns when `judge` gives
    the keyword arguments of `judge_scores` (judge_model, and optionally judge_base_url, judge_api_key, cache_dir)."""
    tem = load_tem_metric(**(tem_options or {}))
    tem_result = tem.compute(predictions=predictions, references=references)
    result = caption_metrics(predictions, references)
    result.update({
        "autodq": tem_result["autodq"], "tem": tem_result["tem"], "tem_content_precision": tem_result["content_precision"],
        "tem_content_recall": tem_result["content_recall"], "tem_content_f1": tem_result["content_f1"],
        "tem_temporal": tem_result["temporal"], "tem_num_failed": tem_result.get("num_failed", 0),
    })
    if judge:
        result.update(judge_scores(predictions, references, **judge))
    return result


def chance_predictions(references: list[str]) -> list[str]:
    """The chance row's predictions: clip k gets clip k+1's reference (the last clip the first's)."""
    return [references[(k + 1) % len(references)] for k in range(len(references))]


def chance_metrics(references: list[str], tem_options: dict | None = None, cache_dir: str | os.PathLike | None = None
                   ) -> dict | None:
    """Every automatic metric of the chance row (`chance_predictions` against `references`); None for fewer than two
    references. Cached in cache_dir/chance.json, keyed by the references, the TEM options and TEM's version."""
    if len(references) < 2:
        return None
    import hashlib

    from facetrack.evaluation.tem.metric import TEM_VERSION

    key = hashlib.sha256(json.dumps([references, sorted((tem_options or {}).items()), TEM_VERSION],
                                    ensure_ascii=False, default=str).encode("utf-8")).hexdigest()
    cache = Path(cache_dir) / CHANCE_FILE if cache_dir is not None else None
    if cache is not None and cache.is_file():
        try:
            stored = json.loads(cache.read_text(encoding="utf-8"))
            if stored.get("key") == key:
                return stored["metrics"]
        except (ValueError, KeyError):
            pass
    metrics = score_predictions(chance_predictions(references), references, tem_options)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"key": key, "metrics": metrics}, indent=1) + "\n", encoding="utf-8")
    return metrics


# ------------------------------------------------------------------------------------------------ table
def _cell(value, column: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.2f}" if column in JUDGE_COLUMNS else f"{value:.3f}"  # judge scores are 0-5


def format_table(model_name: str, metrics: dict, num_scored: int, num_missing: int, with_paper: bool = True,
                 tem_backends: str = "rule extractor + lexicon relations", judge_name: str | None = None,
                 num_annotations: int | None = None, notes: Iterable[str] = (), chance: dict | None = None,
                 num_chance: int | None = None) -> str:
    """Markdown: the paper's main table (reference lines), the chance row (when `chance` is given: the metrics of
    another clip's reference, `chance_metrics`) and our row in the paper's column order, then the extra metrics.
    GPT-judged columns read "n/a" unless a judge produced them."""
    header = "| Model | " + " | ".join(PAPER_COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(PAPER_COLUMNS) + 1)]
    if with_paper:
        for name, values in PAPER_TABLE.items():
            lines.append(f"| {name} | " + " | ".join(_cell(v, c) for v, c in zip(values, PAPER_COLUMNS)) + " |")
    if chance is not None:
        lines.append(f"| {CHANCE_ROW} | " + " | ".join(_cell(chance.get(COLUMN_KEYS[c]), c) for c in PAPER_COLUMNS) + " |")
    lines.append(f"| **{model_name}** | " + " | ".join(_cell(metrics.get(COLUMN_KEYS[c]), c) for c in PAPER_COLUMNS) + " |")
    extra_header = "| Model | " + " | ".join(EXTRA_COLUMNS) + " | Scored | Missing videos |"
    lines += ["", extra_header, "|" + "---|" * (len(EXTRA_COLUMNS) + 3)]
    if chance is not None:
        lines.append(f"| {CHANCE_ROW} | " + " | ".join(_cell(chance.get(k)) for k in EXTRA_COLUMNS.values())
                     + f" | {num_chance if num_chance is not None else 'n/a'} | n/a |")
    lines.append(f"| {model_name} | " + " | ".join(_cell(metrics.get(k)) for k in EXTRA_COLUMNS.values())
                 + f" | {num_scored} | {num_missing} |")
    lines += [
        "",
        "Paper rows are the published FEC-Bench numbers (reference lines). CIDEr: CIDEr-D (pycocoevalcap) on "
        "lower-cased word tokens without punctuation, on its 0-10 scale (10 x the mean TF-IDF n-gram cosine; 1.0 is "
        "not a perfect score); ROUGE-L: rouge-score F-measure; BLEU-4: coco-caption's Bleu on the same tokens as "
        f"CIDEr; AutoDQ and TEM: evaluate_metric/tem with {tem_backends}, which differ from the paper's GPT "
        "backends, so compare our rows with each other first.",
    ]
    if chance is not None:
        lines.append(
            f"{CHANCE_ROW}: each of the {num_chance} annotated clips scored with the reference of the clip listed "
            "after it as its caption (clip k gets clip k+1's reference, the last clip the first's), with the same "
            "metrics: what a fluent caption of the wrong clip scores. A model's row means little unless it is well "
            "above it.")
    if metrics.get("meteor") is None and metrics.get("meteor_note"):
        lines.append(metrics["meteor_note"])
    elif metrics.get("meteor") is not None:
        lines.append(METEOR_NOTE + ".")
    if num_missing or (num_annotations is not None and num_scored < num_annotations):
        total = num_annotations if num_annotations is not None else num_scored + num_missing
        lines.append(f"Only {num_scored} of {total} clips were scored: CIDEr's IDF then comes from that subset of "
                     "references, so CIDEr is not comparable with a full-benchmark figure (the other columns are "
                     "means over the scored clips).")
    if judge_name:
        lines.append(f"Correctness/Detail/Context/Temporal: 0-5 scores from the LLM judge {judge_name} "
                     "(text-only, Video-ChatGPT-style prompts), not the paper's GPT judge.")
    if all(metrics.get(COLUMN_KEYS[c]) is None for c in JUDGE_COLUMNS):
        lines.append("Correctness/Detail/Context/Temporal are GPT-judged in the paper: n/a without a configured judge.")
    if metrics.get("tem_num_failed"):
        lines.append(f"{metrics['tem_num_failed']} clips were dropped from AutoDQ/TEM: the LLM gave no usable answer "
                     "(AutoDQ's protocol).")
    lines.extend(notes)
    notes = []
    return "\n".join(lines + notes) + "\n"


def evaluate_benchmark(
    annotations: list[dict], predictions: dict[str, str], model_name: str, out_dir: str | os.PathLike,
    missing: Iterable[dict] = (), tem_options: dict | None = None, judge: dict | None = None,
    generation: dict | None = None, chance: bool = True,
) -> dict:
    """Score the predictions of the annotated items whose video is not missing (items without a prediction are
    counted in `num_without_prediction`), write results.json and results.md into out_dir, and return the results.
    `generation`: how the captions were made (model, backend, frames, notes such as a preprocessing fallback); its
    `notes` are printed under the table and everything goes to results.json. `chance`: also score the chance row
    (another clip's reference, over all the annotations; cached in out_dir/chance.json) and print it."""
    out_dir = Path(out_dir)
    missing = list(missing)
    missing_ids = {item["id"] for item in missing}
    scored = [item for item in annotations if item["id"] in predictions and item["id"] not in missing_ids]
    unpredicted = [item for item in annotations if item["id"] not in predictions and item["id"] not in missing_ids]
    if not scored:
        raise BenchmarkError("no annotated item has a prediction: nothing to score (check the ids and the video root)")
    metrics = score_predictions([predictions[item["id"]] for item in scored], [item["caption"] for item in scored],
                                tem_options, judge)
    for column in JUDGE_COLUMNS:
        metrics.setdefault(COLUMN_KEYS[column], None)
    options = tem_options or {}
    tem_backends = f"extractor {options.get('extractor', 'rules')} + relation {options.get('relation', 'lexicon')}"
    if options.get("llm_model"):
        tem_backends += f" (LLM {options['llm_model']})"
    chance_row = chance_metrics([item["caption"] for item in annotations], tem_options, out_dir) if chance else None
    table = format_table(model_name, metrics, num_scored=len(scored), num_missing=len(missing),
                         tem_backends=tem_backends, judge_name=(judge or {}).get("judge_model"),
                         num_annotations=len(annotations), notes=(generation or {}).get("notes", ()),
                         chance=chance_row, num_chance=len(annotations))
    results = {
        "model": model_name,
        "num_annotations": len(annotations),
        "num_scored": len(scored),
        "num_missing_videos": len(missing),
        "missing_videos": [item["video"] for item in missing],
        "num_without_prediction": len(unpredicted),
        "metrics": metrics,
        "tem_options": tem_options or {"extractor": "rules", "relation": "lexicon"},
        "generation": generation,
        "judge": {k: v for k, v in (judge or {}).items() if k != "judge_api_key"} or None,
        "paper_table": {"columns": PAPER_COLUMNS, "rows": PAPER_TABLE},
        "chance": None if chance_row is None else {
            "metrics": chance_row, "num_references": len(annotations),
            "derangement": "clip k is scored with clip k+1's reference (the last clip with the first's), in "
                           "annotation file order"},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out_dir / "results.md").write_text(table, encoding="utf-8")
    results["table"] = table
    return results
