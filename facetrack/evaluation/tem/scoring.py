"""TEM scoring of one (prediction, reference) pair once events and relations are known, and averaging.

Per sample, with P predicted and R reference events:
    precision = (# predicted events entailed by the reference) / P          (1.0 when P == 0, as in AutoDQ)
    recall    = (# reference events entailed by the prediction) / R          (1.0 when R == 0)
    F1        = 2 * precision * recall / (precision + recall)
    M         = one-to-one alignment of entailed pairs: most pairs, then most similarity, then closest phase
                positions, on events in canonical (phase, text) order (`align`)
    LCS       = longest chain of aligned pairs whose phases are non-decreasing in both captions
                (events of the same phase are simultaneous: their order is neither rewarded nor punished)
    temporal  = LCS / |M|                                      (1.0 when P == R == 0; 0.0 when nothing aligns)
    TEM       = F1 * temporal
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from facetrack.evaluation.tem.events import Event
from facetrack.evaluation.tem.relations import CONTRADICTION, ENTAILMENT, NEUTRAL, Relations


@dataclass
class SampleScore:
    precision: float
    recall: float
    f1: float
    temporal: float
    tem: float
    num_prediction_events: int
    num_reference_events: int
    num_aligned: int
    lcs: int
    table: list[dict] = field(default_factory=list)  # the matched-event table, for inspection and the demo

    def scores(self) -> dict:
        return {
            "content_precision": self.precision, "content_recall": self.recall, "content_f1": self.f1,
            "temporal": self.temporal, "tem": self.tem, "num_prediction_events": self.num_prediction_events,
            "num_reference_events": self.num_reference_events, "num_aligned": self.num_aligned, "lcs": self.lcs,
        }


def phase_positions(events: list[Event]) -> list[float]:
    """Each event's phase as a position in [0, 1]: the rank of its phase among the caption's distinct phases,
    divided by (number of distinct phases - 1); 0 for a caption with one phase."""
    phases = sorted({event.phase for event in events})
    rank = {phase: index for index, phase in enumerate(phases)}
    return [rank[event.phase] / max(1, len(phases) - 1) for event in events]


def align(relations: Relations, pred: list[Event], ref: list[Event]) -> list[tuple[int, int]]:
    """The alignment M: one-to-one pairs (pred index, ref index) among entailed pairs (either direction), chosen by,
    in this order of priority:
      1. the most pairs;
      2. then the largest total similarity (rule score or rounded cosine);
      3. then the smallest total squared distance between the two events' phase positions (`phase_positions`),
         which prefers uncrossed pairs whenever a crossing is a tie ("blinks, smiles, blinks" vs "smiles, blinks":
         the prediction's "blinks" pairs with the reference's last one);
      4. a remaining tie is between events of the same phase with the same text, which give the same score:
         events are put in canonical order, sorted by (phase, text), before the assignment, so the listing order of a
         caption's events never changes the result.
    Solved exactly as one assignment problem (Hungarian algorithm) with weight C + similarity - eps * distance^2 for
    allowed pairs, C = 2K + 1 and eps = 1e-4 / (K + 1), K = min(P, R): C outweighs any similarity difference and eps
    any difference of 1e-4 in total similarity (similarities have 4 decimals)."""
    allowed = relations.pred_entailed | relations.ref_entailed
    if not allowed.any():
        return []
    pred_order = sorted(range(len(pred)), key=lambda i: (pred[i].phase, pred[i].text, i))
    ref_order = sorted(range(len(ref)), key=lambda j: (ref[j].phase, ref[j].text, j))
    pred_position, ref_position = phase_positions(pred), phase_positions(ref)
    k = min(len(pred), len(ref))
    big, eps = 2 * k + 1, 1e-4 / (k + 1)
    cost = np.zeros((len(pred_order), len(ref_order)))
    for a, i in enumerate(pred_order):
        for b, j in enumerate(ref_order):
            if allowed[i, j]:
                distance = pred_position[i] - ref_position[j]
                cost[a, b] = -(big + float(relations.similarity[i, j]) - eps * distance * distance)
            else:
                cost[a, b] = 4.0 * big  # never preferred; dropped after the assignment
    rows, cols = linear_sum_assignment(cost)
    pairs = [(pred_order[a], ref_order[b]) for a, b in zip(rows, cols) if allowed[pred_order[a], ref_order[b]]]
    return sorted(pairs)


def longest_ordered_chain(pairs: list[tuple[int, int]], pred: list[Event], ref: list[Event]) -> list[tuple[int, int]]:
    """The LCS of the aligned events: the longest subset of pairs whose phases are non-decreasing in both
    captions. Sorting by (pred phase, ref phase) and taking the longest non-decreasing run of ref phases is exact."""
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


def score_sample(pred: list[Event], ref: list[Event], relations: Relations) -> SampleScore:
    pred_ok = relations.pred_is_entailed() if pred else np.zeros(0, bool)
    ref_ok = relations.ref_is_entailed() if ref else np.zeros(0, bool)
    precision = float(pred_ok.mean()) if pred else 1.0
    recall = float(ref_ok.mean()) if ref else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    pairs = align(relations, pred, ref) if pred and ref else []
    chain = longest_ordered_chain(pairs, pred, ref)
    if not pred and not ref:
        temporal = 1.0
    else:
        temporal = len(chain) / len(pairs) if pairs else 0.0
    return SampleScore(
        precision=precision, recall=recall, f1=f1, temporal=temporal, tem=f1 * temporal,
        num_prediction_events=len(pred), num_reference_events=len(ref), num_aligned=len(pairs), lcs=len(chain),
        table=matched_event_table(pred, ref, relations, pairs, chain),
    )


def matched_event_table(pred: list[Event], ref: list[Event], relations: Relations, pairs: list[tuple[int, int]],
                        chain: list[tuple[int, int]]) -> list[dict]:
    """One row per predicted event (with its aligned, or else most similar, reference event), then one row per
    reference event the prediction missed."""
    partner = dict(pairs)
    in_chain = set(chain)
    rows = []
    pred_ok = relations.pred_is_entailed() if pred else np.zeros(0, bool)
    ref_ok = relations.ref_is_entailed() if ref else np.zeros(0, bool)
    for i, event in enumerate(pred):
        j = partner.get(i)
        if j is None and ref:
            j = int(np.argmax(relations.similarity[i]))
        if j is not None and relations.contradiction[i, j]:
            relation = CONTRADICTION
        elif i in partner or pred_ok[i]:
            relation = ENTAILMENT
        else:
            relation = NEUTRAL
        rows.append({
            "prediction_event": event.text, "prediction_phase": event.phase,
            "reference_event": ref[j].text if j is not None else None,
            "reference_phase": ref[j].phase if j is not None else None,
            "similarity": float(relations.similarity[i, j]) if j is not None else None,
            "relation": relation, "aligned": i in partner, "in_order": (i, j) in in_chain,
        })
    aligned_refs = set(partner.values())
    for j, event in enumerate(ref):
        if j not in aligned_refs and not ref_ok[j]:
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
