"""lmms-eval task functions for FEC-Bench, scored with FaceTrack-MM's TEM `evaluate` module.

Signatures follow lmms-eval's tasks: doc_to_visual(doc), doc_to_text(doc, lmms_eval_specific_kwargs=None),
doc_to_target(doc), process_results(doc, results) -> {metric: item}, and one aggregation(items) per metric.
Every metric is corpus-level (AutoDQ averages precision and recall over clips; CIDEr's IDF comes from all references),
so process_results hands each metric the (prediction, reference) pair and the aggregations score the whole list at
once; TEM's outputs (tem, autodq, content F1, temporal) come from one TEM call, cached.

Where things are found:
- videos: $FEC_BENCH_VIDEO_ROOT / doc["video"];
- the TEM metric: $FEC_BENCH_TEM_METRIC (an `evaluate` module folder), else the installed facetrack-mm package's
  (`facetrack.evaluation.tem`);
- CIDEr, ROUGE-L, BLEU-4: facetrack.evaluation.caption_metrics (pip install the facetrack-mm package).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

# The paper's evaluation prompt (the same authors' next model on this benchmark).
FEC_BENCH_PROMPT = (
    "Please provide a detailed description of the facial appearance attributes and expression changes of the "
    "character in the video"
)


@functools.lru_cache(maxsize=1)
def _tem_metric():
    folder = os.environ.get("FEC_BENCH_TEM_METRIC")
    if folder:
        import evaluate

        if not (Path(folder) / "tem.py").is_file():
            raise FileNotFoundError(f"FEC-Bench: FEC_BENCH_TEM_METRIC={folder} holds no tem.py")
        return evaluate.load(str(Path(folder) / "tem.py"))
    try:
        from facetrack.evaluation.tem.metric import load_tem_metric
    except ImportError as error:
        raise ImportError("FEC-Bench is scored with FaceTrack-MM's TEM: pip install facetrack-mm (or set "
                          "FEC_BENCH_TEM_METRIC to an evaluate module folder of TEM)") from error
    return load_tem_metric()


def fec_bench_doc_to_visual(doc: dict) -> list[str]:
    root = os.environ.get("FEC_BENCH_VIDEO_ROOT")
    if not root:
        raise OSError("FEC-Bench: set FEC_BENCH_VIDEO_ROOT to the folder the annotation video paths are relative to")
    path = Path(root) / doc["video"]
    if not path.is_file():
        raise FileNotFoundError(f"FEC-Bench: video {doc['video']} (id {doc['id']}) not found under {root}")
    return [str(path)]


def fec_bench_doc_to_text(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> str:
    kwargs = lmms_eval_specific_kwargs or {}
    return f"{kwargs.get('pre_prompt', '')}{FEC_BENCH_PROMPT}{kwargs.get('post_prompt', '')}"


def fec_bench_doc_to_target(doc: dict) -> str:
    return doc["caption"]


METRICS = ("tem", "autodq", "tem_content_f1", "tem_temporal", "cider", "rouge_l", "bleu4")


def fec_bench_process_results(doc: dict, results: list[str]) -> dict:
    pair = {"id": str(doc["id"]), "prediction": results[0] if results else "", "reference": doc["caption"]}
    return {metric: pair for metric in METRICS}


def _pairs(items: list[dict]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    items = sorted(items, key=lambda item: item["id"])  # one order whatever the ranks' merge order was
    return tuple(item["prediction"] for item in items), tuple(item["reference"] for item in items)


@functools.lru_cache(maxsize=4)
def _tem_scores(predictions: tuple[str, ...], references: tuple[str, ...]) -> dict:
    return _tem_metric().compute(predictions=list(predictions), references=list(references))


@functools.lru_cache(maxsize=4)
def _caption_scores(predictions: tuple[str, ...], references: tuple[str, ...]) -> dict:
    try:
        from facetrack.evaluation.caption_metrics import caption_metrics
    except ImportError as error:
        raise ImportError("FEC-Bench: CIDEr / ROUGE-L / BLEU-4 need the facetrack-mm package (pip install -e "
                          "path/to/facetrack); remove them from fec_bench.yaml to run TEM and AutoDQ only") from error
    return caption_metrics(list(predictions), list(references))


def fec_bench_aggregate_tem(items: list[dict]) -> float:
    return _tem_scores(*_pairs(items))["tem"]


def fec_bench_aggregate_autodq(items: list[dict]) -> float:
    return _tem_scores(*_pairs(items))["autodq"]


def fec_bench_aggregate_content_f1(items: list[dict]) -> float:
    return _tem_scores(*_pairs(items))["content_f1"]


def fec_bench_aggregate_temporal(items: list[dict]) -> float:
    return _tem_scores(*_pairs(items))["temporal"]


def fec_bench_aggregate_cider(items: list[dict]) -> float:
    return _caption_scores(*_pairs(items))["cider"]


def fec_bench_aggregate_rouge_l(items: list[dict]) -> float:
    return _caption_scores(*_pairs(items))["rouge_l"]


def fec_bench_aggregate_bleu4(items: list[dict]) -> float:
    return _caption_scores(*_pairs(items))["bleu4"]
