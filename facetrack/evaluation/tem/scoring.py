"""TEM scoring of one (prediction, reference) pair once events and relations are known, and averaging.

Per sample (README "Scores per caption pair"), with the events' facets as content items, each with its
informativeness v (`informativeness.py`):
    w(a, b)   = facet weight (same action; degree and direction, `Lexicon.match_weight`) x time weight
                (`time_weight` of the distance between the two events' positions, `phase_positions`), 4 decimals
    gain      = w x (v_a + v_b) / 2, 6 decimals
    M         = one-to-one matching of items with w > 0 of the largest total gain (then the smallest total squared
                position distance, then canonical order), solved as one assignment problem
    precision = length x sum_M w v_a / V_p,  length = min(1, LENGTH_TOLERANCE V_r / V_p)   (V = total informativeness)
    recall    = sum_M w v_b / V_r
    content   = F_0.5 of precision and recall                   (all scores 0 when either caption has no event)
    LCS       = longest chain of M's pairs whose phases are non-decreasing in both captions
    temporal  = LCS / |M|                                         (0 when M is empty)
    TEM       = content x (1 + temporal) / 2
One-to-one matching and the length rule keep volume from paying: a reference item supports at most one predicted
item, so joining many captions adds unmatched items (precision falls) faster than it adds matches.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from facetrack.evaluation.tem.events import Event
from facetrack.evaluation.tem.relations import CONTRADICTION, ENTAILMENT, NEUTRAL, Relations

# The time weight (README "Time"): two events at most TIME_TOLERANCE apart (as a share of the clip, between their
# phase positions) are at the same moment (1); from there the weight falls linearly to TIME_FLOOR at TIME_FAR apart
# and stays there: the right action at the wrong moment keeps part of its credit, the order check does the rest.
TIME_TOLERANCE = 0.15
TIME_FAR = 0.5
TIME_FLOOR = 0.5
WEIGHT_DECIMALS = 4
# The length rule (README "Volume"): content beyond LENGTH_TOLERANCE x the reference's scales precision down.
LENGTH_TOLERANCE = 1.25
CONTENT_BETA = 0.5
# The order factor: matched content outside the longest ordered chain keeps 1 - ORDER_WEIGHT of its credit.
ORDER_WEIGHT = 0.5
GAIN_DECIMALS = 6


@dataclass
class SampleScore:
    precision: float
    recall: float
    f1: float
    temporal: float
    tem: float
    num_prediction_events: int
    num_reference_events: int
    num_aligned: int  # matched item pairs (|M|)
    lcs: int
    table: list[dict] = field(default_factory=list)  # the matched-event table, for inspection and the demo
    num_prediction_items: int = 0  # content items (facets; 1 for an event without facets)
    num_reference_items: int = 0

    def scores(self) -> dict:
        return {
            "content_precision": self.precision, "content_recall": self.recall, "content_f1": self.f1,
            "temporal": self.temporal, "tem": self.tem, "num_prediction_events": self.num_prediction_events,
            "num_reference_events": self.num_reference_events, "num_aligned": self.num_aligned, "lcs": self.lcs,
            "num_prediction_items": self.num_prediction_items, "num_reference_items": self.num_reference_items,
        }


def combine(content: float, temporal: float) -> float:
    """TEM = content x (1 - ORDER_WEIGHT x (1 - temporal)): matched content out of order keeps 1 - ORDER_WEIGHT of
    its credit (README "Why TEM = F x (1 + temporal) / 2")."""
    return content * (1.0 - ORDER_WEIGHT * (1.0 - temporal))


def f_measure(precision: float, recall: float, beta: float | None = None) -> float:
    """F_beta = (1 + b^2) P R / (b^2 P + R), b = CONTENT_BETA (0 when P = R = 0)."""
    beta = CONTENT_BETA if beta is None else beta
    denominator = beta * beta * precision + recall
    return (1 + beta * beta) * precision * recall / denominator if denominator > 0 else 0.0


def phase_positions(events: list[Event]) -> list[float]:
    """Each event's place in the clip, in [0, 1]: the clip is cut into as many equal parts as the caption has
    top-level phases (with events); a top-level phase's part is cut equally among its steps (phases opened inside
    a sentence by "then" ...) with events; an event sits at the centre of its part. One phase: 0.5. Without
    segments (`Event.segment` None), every phase is top-level: (rank + 0.5) / count."""
    segment_of = [event.phase if event.segment is None else event.segment for event in events]
    segments = sorted(set(segment_of))
    steps: dict[int, list[int]] = {}
    for seg, event in zip(segment_of, events):
        steps.setdefault(seg, [])
        if event.phase not in steps[seg]:
            steps[seg].append(event.phase)
    positions = []
    for seg, event in zip(segment_of, events):
        own = sorted(steps[seg])
        positions.append((segments.index(seg) + (own.index(event.phase) + 0.5) / len(own)) / len(segments))
    return positions


def time_weight(distance):
    """1 up to TIME_TOLERANCE apart, falling linearly to TIME_FLOOR at TIME_FAR apart and beyond (works on arrays)."""
    share = np.clip((distance - TIME_TOLERANCE) / (TIME_FAR - TIME_TOLERANCE), 0.0, 1.0)
    return 1.0 - (1.0 - TIME_FLOOR) * share


def item_weights(relations: Relations, pred: list[Event], ref: list[Event]):
    """(pred_items, ref_items, weights, distances, pred values, ref values): each item's event index; for every item
    pair the match weight (facet weight x time weight, rounded to 4 decimals) and the distance between the events'
    positions; each item's informativeness."""
    pred_items, ref_items, facet, pred_value, ref_value = relations.items()
    pred_position, ref_position = phase_positions(pred), phase_positions(ref)
    distance = np.abs(np.array([pred_position[i] for i in pred_items])[:, None]
                      - np.array([ref_position[j] for j in ref_items])[None, :])
    time = time_weight(distance)
    return pred_items, ref_items, np.round(facet * time, WEIGHT_DECIMALS), distance, pred_value, ref_value


def match_gain(weights: np.ndarray, pred_value: np.ndarray, ref_value: np.ndarray) -> np.ndarray:
    """What each item pair adds to the matching: weight x mean informativeness of its two items, rounded to
    GAIN_DECIMALS."""
    return np.round(weights * (pred_value[:, None] + ref_value[None, :]) / 2, GAIN_DECIMALS)


def match(weights: np.ndarray, distance: np.ndarray, pred_keys: list, ref_keys: list) -> list[tuple[int, int]]:
    """The matching M: one-to-one item pairs with weight > 0, chosen by
      1. the largest total gain (`match_gain`);
      2. then the smallest total squared distance between the two events' phase positions, which prefers uncrossed
         pairs whenever a crossing is a tie ("blinks, smiles, blinks" vs "smiles, blinks": the prediction's
         "blinks" pairs with the reference's last one);
      3. a remaining tie is between items of the same phase and text, which give the same scores: items are put in
         canonical order (`pred_keys`, `ref_keys`: phase, event text, facet index) before the assignment, so the
         listing order of a caption's events never changes the result.
    Solved exactly as one assignment problem (Hungarian algorithm) with weight g - eps * distance^2 for pairs with
    g > 0 and 0 otherwise, eps = 1e-8 / (K + 1), K = min(number of items): gains have 6 decimals, so eps never
    outweighs a difference in total gain."""
    allowed = weights > 0
    if not allowed.any():
        return []
    pred_order = sorted(range(len(pred_keys)), key=lambda a: (pred_keys[a], a))
    ref_order = sorted(range(len(ref_keys)), key=lambda b: (ref_keys[b], b))
    eps = 1e-8 / (min(len(pred_keys), len(ref_keys)) + 1)
    benefit = np.where(allowed, weights - eps * distance * distance, 0.0)[np.ix_(pred_order, ref_order)]
    rows, cols = linear_sum_assignment(-benefit)
    pairs = [(pred_order[a], ref_order[b]) for a, b in zip(rows, cols) if allowed[pred_order[a], ref_order[b]]]
    return sorted(pairs)


def longest_ordered_chain(pairs: list[tuple[int, int]], pred: list[Event], ref: list[Event]) -> list[tuple[int, int]]:
    """The LCS of the aligned events: the longest subset of pairs (event indices; a pair may repeat when several
    facets of two events are matched) whose phases are non-decreasing in both captions. Sorting by (pred phase, ref
    phase) and taking the longest non-decreasing run of ref phases is exact."""
    ordered = sorted(pairs, key=lambda p: (pred[p[0]].phase, ref[p[1]].phase, pred[p[0]].text, ref[p[1]].text, p))
    tails: list[int] = []  # tails[k]: smallest ref phase ending a chain of length k + 1
    tail_index: list[int] = []
    parent: list[int] = [-1] * len(ordered)
    for position, (_, j) in enumerate(ordered):
        phase = ref[j].phase
        k = bisect.bisect_right(tails, phase)
        if k == len(tails):
            tails.append(phase)
            tail_index.append(position)
        else:
            tails[k] = phase
            tail_index[k] = position
        parent[position] = tail_index[k - 1] if k > 0 else -1
    chain = []
    position = tail_index[-1] if tail_index else -1
    while position != -1:
        chain.append(ordered[position])
        position = parent[position]
    return chain[::-1]


def _item_keys(items: list[int], events: list[Event]) -> list[tuple]:
    """Canonical sort key of each item: (phase, event text, facet index within the event)."""
    keys, seen = [], {}
    for event in items:
        facet = seen.get(event, 0)
        seen[event] = facet + 1
        keys.append((events[event].phase, events[event].text, facet))
    return keys


def score_sample(pred: list[Event], ref: list[Event], relations: Relations) -> SampleScore:
    if not pred or not ref:
        # An empty caption describes nothing: 0, whatever the other caption (README "Empty captions").
        table = matched_event_table(pred, ref, relations, {}, set(), {})
        return SampleScore(0.0, 0.0, 0.0, 0.0, 0.0, len(pred), len(ref), 0, 0, table=table,
                           num_prediction_items=0, num_reference_items=0)
    pred_items, ref_items, weights, distance, pred_value, ref_value = item_weights(relations, pred, ref)
    gain = match_gain(weights, pred_value, ref_value)
    pairs = match(gain, distance, _item_keys(pred_items, pred), _item_keys(ref_items, ref))
    if relations.pred_supported is not None:  # AutoDQ's judge: event verdicts against the whole other caption
        precision = float(relations.pred_supported.mean())
        recall = float(relations.ref_supported.mean())
    else:
        # The length rule: a prediction holding more content than LENGTH_TOLERANCE x the reference's has its
        # precision scaled down by the ratio, so saying more never buys recall for free.
        # (math.fsum: exactly rounded sums, so the same content in another order gives the same number, and a
        # caption against itself exactly 1)
        pred_total, ref_total = math.fsum(pred_value), math.fsum(ref_value)
        length = min(1.0, LENGTH_TOLERANCE * ref_total / pred_total)
        precision = length * math.fsum(weights[a, b] * pred_value[a] for a, b in pairs) / pred_total
        recall = math.fsum(weights[a, b] * ref_value[b] for a, b in pairs) / ref_total
    f1 = f_measure(precision, recall)
    event_pairs = [(pred_items[a], ref_items[b]) for a, b in pairs]
    chain = longest_ordered_chain(event_pairs, pred, ref)
    temporal = len(chain) / len(pairs) if pairs else 0.0
    partner: dict[int, tuple[int, float]] = {}
    for (a, b), (i, j) in zip(pairs, event_pairs):
        partner.setdefault(i, (j, float(weights[a, b])))
    return SampleScore(
        precision=precision, recall=recall, f1=f1, temporal=temporal, tem=combine(f1, temporal),
        num_prediction_events=len(pred), num_reference_events=len(ref), num_aligned=len(pairs), lcs=len(chain),
        num_prediction_items=len(pred_items), num_reference_items=len(ref_items),
        table=matched_event_table(pred, ref, relations, partner, set(chain), {j for _, j in event_pairs}),
    )


def matched_event_table(pred: list[Event], ref: list[Event], relations: Relations,
                        partner: dict[int, tuple[int, float]], in_chain: set, matched_refs: set) -> list[dict]:
    """One row per predicted event (with the reference event its first matched facet is matched to, and that
    pair's weight; or else its most similar reference event), then one row per reference event none of whose facets
    is matched ("missed")."""
    rows = []
    for i, event in enumerate(pred):
        j, weight = partner.get(i, (None, None))
        if j is None and ref:
            j = int(np.argmax(relations.similarity[i]))
            weight = float(relations.similarity[i, j])
        if i in partner:
            relation = ENTAILMENT
        elif j is not None and relations.contradiction[i, j]:
            relation = CONTRADICTION
        else:
            relation = NEUTRAL
        rows.append({
            "prediction_event": event.text, "prediction_phase": event.phase,
            "reference_event": ref[j].text if j is not None else None,
            "reference_phase": ref[j].phase if j is not None else None,
            "similarity": weight, "relation": relation, "aligned": i in partner, "in_order": (i, j) in in_chain,
        })
    for j, event in enumerate(ref):
        if j not in matched_refs:
            rows.append({
                "prediction_event": None, "prediction_phase": None, "reference_event": event.text,
                "reference_phase": event.phase, "similarity": None, "relation": "missed", "aligned": False,
                "in_order": False,
            })
    return rows


def average(samples: list[SampleScore]) -> dict[str, float]:
    """Means over samples; `autodq` is AutoDQ's corpus F1: the harmonic mean of mean precision and mean recall."""
    if not samples:
        return {}
    mean = lambda values: float(np.mean(values))  # noqa: E731
    precision = mean([s.precision for s in samples])
    recall = mean([s.recall for s in samples])
    return {
        "tem": mean([s.tem for s in samples]),
        "content_precision": precision,
        "content_recall": recall,
        "content_f1": mean([s.f1 for s in samples]),
        "temporal": mean([s.temporal for s in samples]),
        "autodq": 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0,
    }
