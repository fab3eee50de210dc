"""TEM scoring of one (prediction, reference) pair once events and relations are known, and averaging.

Per sample, with P predicted and R reference events:
    precision = (# predicted events entailed by the reference) / P          (1.0 when P == 0, as in AutoDQ)
    recall    = (# reference events entailed by the prediction) / R          (1.0 when R == 0)
    F1        = 2 * precision * recall / (precision + recall)
    M         = one-to-one alignment of entailed pairs maximising total similarity (Hungarian algorithm)
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

from .tem_events import Event
from .tem_relations import CONTRADICTION, ENTAILMENT, NEUTRAL, Relations


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


def align(relations: Relations) -> list[tuple[int, int]]:
    """One-to-one pairs (pred index, ref index) among entailed pairs, maximising the summed similarity."""
    allowed = relations.pred_entailed | relations.ref_entailed
    if not allowed.any():
        return []
    # Disallowed pairs get a cost no allowed set can prefer; they are dropped after the assignment.
    cost = np.where(allowed, -relations.similarity.astype(np.float64), 1e6)
    rows, cols = linear_sum_assignment(cost)
    return sorted((int(i), int(j)) for i, j in zip(rows, cols) if allowed[i, j])


def longest_ordered_chain(pairs: list[tuple[int, int]], pred: list[Event], ref: list[Event]) -> list[tuple[int, int]]:
    """The LCS of the aligned events: the longest subset of pairs whose phases are non-decreasing in both
    captions. Sorting by (pred phase, ref phase) and taking the longest non-decreasing run of ref phases is exact."""
    ordered = sorted(pairs, key=lambda p: (pred[p[0]].phase, ref[p[1]].phase, p[0], p[1]))
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
    pairs = align(relations) if pred and ref else []
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
