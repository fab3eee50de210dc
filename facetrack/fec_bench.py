"""FEC-Bench evaluation: caption the test videos with a FaceTrack-MM model (or read existing predictions), then
score them with every metric of the paper's main table plus BLEU-4 and METEOR.

Where each metric lives:
- TEM and AutoDQ: the `evaluate` module in `evaluate_metric/tem/` (one compute gives both: AutoDQ is TEM's content
  precision/recall without order), so the Hub metric Space and this benchmark share one implementation.
- CIDEr, ROUGE-L, BLEU-4, METEOR: `caption_metrics` below. They are corpus-level captioning metrics (CIDEr's IDF
  comes from the whole reference set) that only the benchmark needs, so they stay out of the per-pair metric Space.
- The paper's GPT-judged columns (Correctness, Detail, Context, Temporal): `judge_scores`, with any LLM behind an
  OpenAI-compatible endpoint (text-only, Video-ChatGPT-style prompts); "n/a" when no judge is configured.
"""

from __future__ import annotations

import functools
import importlib
import json
import math
import os
import re
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

from .inference import DEFAULT_PROMPT

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
    "BLEU-4": "bleu4", "METEOR": "meteor", "TEM content F1": "tem_content_f1", "TEM temporal": "tem_temporal",
}



class BenchmarkError(ValueError):
    """Bad annotations, predictions or arguments for the FEC-Bench evaluation."""


# ------------------------------------------------------------------------------------------------ files
def load_annotations(path: str | os.PathLike) -> list[dict]:
    """FEC-Bench annotations (the FDA/DFEC format `facetrack dataset build` reads, with the same checks):
    a JSON list of {"id", "video", "caption"} -> dicts with string ids."""
    from .dataset_builder import DatasetBuildError, read_annotations

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


# ------------------------------------------------------------------------------------------------ generation
def generate_predictions(
    captioner, items: list[dict], video_root: str | os.PathLike, predictions_path: str | os.PathLike,
    model_name: str, batch_size: int = 1, num_frames: int | None = None, prompt: str = DEFAULT_PROMPT,
    max_new_tokens: int = 256, progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, str], list[dict]]:
    """Caption `items` in batches with a `facetrack.inference.Captioner`, appending each batch to `predictions_path`
    (JSONL) as soon as it is done, so an interrupted run resumes where it stopped: ids already in the file are
    skipped. The generation settings are kept beside the file (`<name>.settings.json`) and a resume with other
    settings is refused, so one file never mixes two models or prompts. A video that cannot be decoded is skipped
    and returned with the reason. Returns ({id: prediction}, [unreadable items])."""
    predictions_path = Path(predictions_path)
    settings = {"model": model_name, "prompt": prompt, "num_frames": num_frames, "max_new_tokens": max_new_tokens}
    settings_path = predictions_path.with_suffix(".settings.json")
    if predictions_path.is_file() and settings_path.is_file():
        previous = json.loads(settings_path.read_text())
        if previous != settings:
            raise BenchmarkError(
                f"{predictions_path} holds predictions made with {previous}, not {settings}: "
                "use another --out (or delete that file) to start over"
            )
    predictions_path.parent.mkdir(parents=True, exist_ok=True)
    settings_path.write_text(json.dumps(settings, indent=2))
    done = read_predictions(predictions_path) if predictions_path.is_file() else {}
    todo = [item for item in items if item["id"] not in done]
    unreadable: list[dict] = []

    def caption(batch: list[dict]) -> list[tuple[dict, str]]:
        videos = [str(Path(video_root) / item["video"]) for item in batch]
        try:
            texts, _ = captioner.generate_captions(videos, prompt, num_frames=num_frames, max_new_tokens=max_new_tokens)
            return list(zip(batch, texts))
        except ValueError as error:  # a video that cannot be decoded (VideoDecodeError) or tracked
            if len(batch) > 1:  # find which one: caption the others
                return [pair for item in batch for pair in caption([item])]
            unreadable.append({**batch[0], "reason": str(error)})
            return []

    for start in range(0, len(todo), batch_size):
        captioned = caption(todo[start : start + batch_size])
        with predictions_path.open("a", encoding="utf-8") as handle:
            for item, text in captioned:
                done[item["id"]] = text
                record = {"id": item["id"], "video": item["video"], "prediction": text, "reference": item["caption"]}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        if progress:
            progress(min(start + batch_size, len(todo)), len(todo))
    return done, unreadable


# ------------------------------------------------------------------------------------------------ metrics
def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens without punctuation (what coco-caption's Java PTB tokenizer produces, near enough)."""
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower())


_LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location noun.motive "
    "noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process noun.quantity "
    "noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change verb.cognition "
    "verb.communication verb.competition verb.consumption verb.contact verb.creation verb.emotion verb.motion "
    "verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()
_LEXNAME_CATEGORY = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}


@functools.lru_cache(maxsize=1)
def load_wordnet():
    """WordNet for METEOR: (reader, None) or (None, reason it is unavailable).

    Looks in NLTK's data path first, then in a WordNet 3.0 database directory: $WORDNET_DIR or /usr/share/wordnet
    (Debian/Ubuntu package `wordnet-base`). NLTK's WordNet data cannot be downloaded here and no PyPI package ships
    it. The Debian package lacks the `lexnames` file NLTK's reader opens, so the database files are copied into
    ~/.cache/facetrack/nltk_data/corpora/wordnet with the fixed WordNet 3.0 list of lexnames (lexnames(5WN)).
    """
    import nltk

    try:
        return _english_wordnet(str(nltk.data.find("corpora/wordnet"))), None
    except LookupError:
        pass
    import shutil

    source = Path(os.environ.get("WORDNET_DIR", "/usr/share/wordnet"))
    if not (source / "data.noun").is_file():
        return None, (
            f"METEOR unavailable: no WordNet data (NLTK's corpora/wordnet is not installed and {source} has no "
            "WordNet 3.0 database; install it with `apt-get install wordnet-base` or set WORDNET_DIR)"
        )
    # An NLTK data folder of our own (NLTK only reads corpora under its data path); files are copied, not
    # linked, because NLTK refuses paths that resolve outside its data path.
    data_root = Path(os.environ.get("FACETRACK_CACHE", Path.home() / ".cache" / "facetrack")) / "nltk_data"
    target = data_root / "corpora" / "wordnet"
    if not (target / "lexnames").is_file():
        target.mkdir(parents=True, exist_ok=True)
        for file in source.iterdir():
            if file.is_file():
                shutil.copyfile(file, target / file.name)
        lines = [f"{index:02d}\t{name}\t{_LEXNAME_CATEGORY[name.split('.')[0]]}" for index, name in enumerate(_LEXNAMES)]
        (target / "lexnames").write_text("\n".join(lines) + "\n")  # written last: marks a complete copy
    if str(data_root) not in nltk.data.path:
        nltk.data.path.append(str(data_root))
    return _english_wordnet(str(target)), None


def _english_wordnet(root: str):
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class EnglishWordNet(WordNetCorpusReader):
        def map_wn(self, version="wordnet"):
            return None  # the WordNet 3.0 sense-key mapping only serves multilingual (OMW) lookups, unused here

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "multilingual functions are not available": expected
        return EnglishWordNet(root, None)


def caption_metrics(predictions: list[str], references: list[str]) -> dict:
    """Corpus CIDEr (CIDEr-D, pycocoevalcap), ROUGE-L F (rouge-score), BLEU-4 (sacrebleu, 13a), METEOR (NLTK,
    with WordNet; None and a `meteor_note` when WordNet is unavailable), all on a 0-1 scale."""
    if len(predictions) != len(references):
        raise BenchmarkError(f"{len(predictions)} predictions but {len(references)} references")
    if not predictions:
        raise BenchmarkError("no predictions to score")
    from pycocoevalcap.cider.cider import Cider
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import BLEU

    result: dict = {}
    tokens_pred = [tokenize(text) for text in predictions]
    tokens_ref = [tokenize(text) for text in references]
    cider, _ = Cider().compute_score(
        {index: [" ".join(tokens)] for index, tokens in enumerate(tokens_ref)},
        {index: [" ".join(tokens)] for index, tokens in enumerate(tokens_pred)},
    )
    result["cider"] = float(cider)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    result["rouge_l"] = float(sum(scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(predictions, references)) / len(predictions))
    result["bleu4"] = float(BLEU().corpus_score(predictions, [references]).score / 100)
    wordnet, reason = load_wordnet()
    if wordnet is None:
        result["meteor"] = None
        result["meteor_note"] = reason
    else:
        from nltk.translate.meteor_score import meteor_score

        scores = [meteor_score([r], p, wordnet=wordnet) for p, r in zip(tokens_pred, tokens_ref)]
        result["meteor"] = float(sum(scores) / len(scores))
        result["meteor_note"] = "NLTK METEOR (WordNet synonyms, Porter stems; not the Java METEOR 1.5 of coco-caption)"
    return result


# Video-ChatGPT-style judge prompts (text only: the judge compares the prediction with the reference caption).
JUDGE_CRITERIA = {
    "judge_correctness": "factual accuracy: does the predicted description agree with the correct description about "
                         "the person's facial expressions and their changes, without contradictions or invented details",
    "judge_detail": "detail orientation: does the predicted description cover all the facial changes of the correct "
                    "description, with specific details rather than generic statements",
    "judge_context": "contextual understanding: does the predicted description capture the overall emotional context "
                     "and situation conveyed by the correct description",
    "judge_temporal": "temporal understanding: does the predicted description give the facial changes in the same "
                      "order over time as the correct description",
}
JUDGE_PROMPT = """You are an evaluator of video descriptions. Score the predicted description against the correct one for {criterion}.
Question: {question}
Correct description: {reference}
Predicted description: {prediction}
Give an integer score from 0 (worst) to 5 (best). Answer with only a JSON object like {{"score": 3}}."""


def judge_scores(predictions: list[str], references: list[str], judge_model: str, judge_base_url: str | None = None,
                 judge_api_key: str | None = None, question: str = DEFAULT_PROMPT, cache_dir: str | None = None) -> dict:
    """Mean 0-5 judge score per criterion (the paper's Correctness/Detail/Context/Temporal columns), from an LLM at an
    OpenAI-compatible endpoint (or a local chat model path); answers are cached on disk like TEM's LLM backends."""
    metric = load_tem_metric()
    tem_llm = importlib.import_module(type(metric).__module__.rsplit(".", 1)[0] + ".tem_llm")
    client = tem_llm.make_llm_client(judge_model, judge_base_url, judge_api_key, cache_dir, max_tokens=32)
    scores: dict = {}
    for key, criterion in JUDGE_CRITERIA.items():
        values = []
        for prediction, reference in zip(predictions, references):
            answer = client.complete(JUDGE_PROMPT.format(criterion=criterion, question=question, reference=reference,
                                                         prediction=prediction))
            match = re.search(r'"score"\s*:\s*(\d+(?:\.\d+)?)', answer) or re.search(r"\b([0-5](?:\.\d+)?)\b", answer)
            if match is None:
                raise BenchmarkError(f"the judge {judge_model!r} answered without a score: {answer[:200]!r}")
            values.append(min(max(float(match.group(1)), 0.0), 5.0))
        scores[key] = sum(values) / len(values)
    return scores


def load_tem_metric(**options):
    """The TEM `evaluate` module shipped with facetrack (works offline); options go to its backends."""
    import evaluate

    from .resources import tem_metric_dir

    return evaluate.load(str(tem_metric_dir()), **options)


def score_predictions(predictions: list[str], references: list[str], tem_options: dict | None = None,
                      judge: dict | None = None) -> dict:
    """Every automatic metric of the benchmark, on a 0-1 scale; the judge's 0-5 columns when `judge` gives
    the keyword arguments of `judge_scores` (judge_model, and optionally judge_base_url, judge_api_key, cache_dir)."""
    tem = load_tem_metric(**(tem_options or {}))
    tem_result = tem.compute(predictions=predictions, references=references)
    result = caption_metrics(predictions, references)
    result.update({
        "autodq": tem_result["autodq"], "tem": tem_result["tem"], "tem_content_precision": tem_result["content_precision"],
        "tem_content_recall": tem_result["content_recall"], "tem_content_f1": tem_result["content_f1"],
        "tem_temporal": tem_result["temporal"],
    })
    if judge:
        result.update(judge_scores(predictions, references, **judge))
    return result


# ------------------------------------------------------------------------------------------------ table
def _cell(value, column: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.2f}" if column in JUDGE_COLUMNS else f"{value:.3f}"  # judge scores are 0-5


def format_table(model_name: str, metrics: dict, num_scored: int, num_missing: int, with_paper: bool = True,
                 tem_backends: str = "rule extractor + all-MiniLM-L6-v2 relations", judge_name: str | None = None) -> str:
    """Markdown: the paper's main table (reference lines) and our row in the paper's column order, then the extra
    metrics. GPT-judged columns read "n/a" unless a judge produced them."""
    header = "| Model | " + " | ".join(PAPER_COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(PAPER_COLUMNS) + 1)]
    if with_paper:
        for name, values in PAPER_TABLE.items():
            lines.append(f"| {name} | " + " | ".join(_cell(v, c) for v, c in zip(values, PAPER_COLUMNS)) + " |")
    lines.append(f"| **{model_name}** | " + " | ".join(_cell(metrics.get(COLUMN_KEYS[c]), c) for c in PAPER_COLUMNS) + " |")
    extra_header = "| Model | " + " | ".join(EXTRA_COLUMNS) + " | Scored | Missing videos |"
    lines += ["", extra_header, "|" + "---|" * (len(EXTRA_COLUMNS) + 3)]
    lines.append(f"| {model_name} | " + " | ".join(_cell(metrics.get(k)) for k in EXTRA_COLUMNS.values())
                 + f" | {num_scored} | {num_missing} |")
    notes = [
        "",
        "Paper rows are the published FEC-Bench numbers (reference lines). CIDEr: CIDEr-D (pycocoevalcap) on "
        "lower-cased word tokens; ROUGE-L: rouge-score F-measure; AutoDQ and TEM: evaluate_metric/tem with "
        f"{tem_backends}, which differ from the paper's GPT backends, so compare our rows with each other first.",
    ]
    if judge_name:
        notes.append(f"Correctness/Detail/Context/Temporal: 0-5 scores from the LLM judge {judge_name} "
                     "(text-only, Video-ChatGPT-style prompts), not the paper's GPT judge.")
    if metrics.get("meteor") is None and metrics.get("meteor_note"):
        notes.append(metrics["meteor_note"])
    if all(metrics.get(COLUMN_KEYS[c]) is None for c in JUDGE_COLUMNS):
        notes.append("Correctness/Detail/Context/Temporal are GPT-judged in the paper: n/a without a configured judge.")
    return "\n".join(lines + notes) + "\n"


def evaluate_benchmark(
    annotations: list[dict], predictions: dict[str, str], model_name: str, out_dir: str | os.PathLike,
    missing: Iterable[dict] = (), tem_options: dict | None = None, judge: dict | None = None,
) -> dict:
    """Score the predictions of the annotated items whose video is not missing (items without a prediction are
    counted in `num_without_prediction`), write results.json and results.md into out_dir, and return the results."""
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
    tem_backends = f"extractor {options.get('extractor', 'rules')} + relation {options.get('relation', 'minilm')}"
    if options.get("llm_model"):
        tem_backends += f" (LLM {options['llm_model']})"
    table = format_table(model_name, metrics, num_scored=len(scored), num_missing=len(missing),
                         tem_backends=tem_backends, judge_name=(judge or {}).get("judge_model"))
    results = {
        "model": model_name,
        "num_annotations": len(annotations),
        "num_scored": len(scored),
        "num_missing_videos": len(missing),
        "missing_videos": [item["video"] for item in missing],
        "num_without_prediction": len(unpredicted),
        "metrics": metrics,
        "tem_options": tem_options or {"extractor": "rules", "relation": "minilm"},
        "judge": {k: v for k, v in (judge or {}).items() if k != "judge_api_key"} or None,
        "paper_table": {"columns": PAPER_COLUMNS, "rows": PAPER_TABLE},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out_dir / "results.md").write_text(table, encoding="utf-8")
    results["table"] = table
    return results
