"""Join face fragments into persons: by identity embedding where there is one, by position where there is not.

1. Which fragments need an embedding: those that could be one person with another fragment (they never share a
   frame with it); a clip with one fragment, or with fragments that all overlap in time, needs none.
2. Fragments of one shot that never share a frame and have the same colours (`look_alike_sets`: one person the
   tracker lost and found again, as in a fast pan) are embedded as one set: the set's best face, its least
   look-alike member's best face and, in sets of 4 or more, the member farthest in time from both; if they are all
   one person, the whole set shares their mean embedding, otherwise every fragment is embedded on its own. Any other fragment is embedded once, on its best face (detection score x
   size, frontal by its landmarks, not cut by the frame border). A face cut by the border or under `SMALL_FACE` px
   gives a *weak* embedding.
3. Agglomerative clustering, closest pair first, average linkage: two groups join if they never share a frame and
   their mean embedding distance is at most `identity_threshold` (`weak_identity_threshold` when the faces compared
   are weak; a group's weak embeddings count only when it has no other). Groups are compared across gaps, across
   shot cuts and out of time order.
4. Position fallback, only where identity cannot decide (no embedder installed, or a fragment without an
   embedding): tracker-linked fragments stay joined, and a fragment that starts within `relink_max_gap` frames after
   another ended *in the same shot*, near its last box and of a similar size, continues it. Never across a cut.

Thresholds (benchmarks/README.md): dlib distances between fragments of one person were <= 0.66 on clean faces
(the woman crying, hand over her face, against her calm face), between the two people >= 0.74; on 16-27 px faces
different people came as close as 0.58, and one person's 16 px face was 0.46 from its full-size self.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from facetrack.faces.fragments import Fragment, box_center, box_side, continues
from facetrack.faces.identity import FaceEmbedder, face_distance, signature_change

IDENTITY_THRESHOLD = 0.65  # clean faces: same person <= 0.61-0.66, different people >= 0.74 (benchmarks/README.md)
WEAK_IDENTITY_THRESHOLD = 0.55  # small (< SMALL_FACE px) or border-cut faces: different people from 0.58
SMALL_FACE = 40.0
MIN_EMBED_FACE = 10.0  # faces smaller than this are not embedded at all
SAME_LOOK = 0.25  # colour signatures of one person's fragments in one shot: <= 0.13; two people: >= 0.76 (measured)


@dataclass
class Group:
    """Fragments of one person, with how each one joined."""

    members: list[int]
    joins: dict[int, str] = field(default_factory=dict)  # fragment id -> "first" / "identity 0.31" / ...


@dataclass
class IdentityReport:
    embedded: int = 0  # faces embedded
    milliseconds: float = 0.0


def face_quality(fragment: Fragment, t: int, width: int, height: int) -> tuple[float, bool]:
    """How good a face is for identity (higher is better), and whether it is weak (small or cut by the border)."""
    detection = fragment.detections[t]
    x1, y1, x2, y2 = detection.box
    side = box_side(detection.box)
    quality = detection.score * min(side, 112.0)
    cut = x1 <= 1 or y1 <= 1 or x2 >= width - 1 or y2 >= height - 1
    if cut:
        quality *= 0.1
    if detection.landmarks and len(detection.landmarks) >= 3:
        (lx, _), (rx, _), (nx, _) = detection.landmarks[:3]
        eye_distance = abs(rx - lx)
        if eye_distance > 0:  # nose halfway between the eyes = frontal
            quality *= max(0.2, 1.0 - abs(nx - (lx + rx) / 2.0) / eye_distance)
    return quality, cut or side < SMALL_FACE


def co_occur(a: list[Fragment], b: list[Fragment]) -> bool:
    frames_a = set().union(*(fragment.detections for fragment in a))
    return any(t in frames_a for fragment in b for t in fragment.detections)


def fragments_to_embed(fragments: list[Fragment]) -> list[Fragment]:
    """Fragments that could be the same person as some other fragment (they share no frame with it)."""
    needed = []
    for fragment in fragments:
        if any(other is not fragment and not co_occur([fragment], [other]) for other in fragments):
            needed.append(fragment)
    return needed


def look_alike_sets(fragments: list[Fragment]) -> list[list[Fragment]]:
    """Within one shot, fragments that never share a frame and whose faces have the same colours (mean signature
    distance <= SAME_LOOK, average linkage, closest first): most likely one person that the tracker lost and found
    again (a fast pan, an occlusion). Each set is embedded as one, after a check (see `embed_fragments`)."""
    sets = [[fragment] for fragment in fragments]
    while True:
        best = None
        for i, a in enumerate(sets):
            for j in range(i + 1, len(sets)):
                b = sets[j]
                if a[0].shot != b[0].shot or co_occur(a, b):
                    continue
                pairs = [signature_change(x.signature, y.signature) for x in a for y in b]
                distance = float(np.mean(pairs))
                if distance <= SAME_LOOK and (best is None or distance < best[0]):
                    best = (distance, i, j)
        if best is None:
            return sets
        _, i, j = best
        sets[i] = sets[i] + sets.pop(j)


def embed_fragments(
    fragments: list[Fragment], frames: np.ndarray, embedder: FaceEmbedder | None,
    identity_threshold: float = IDENTITY_THRESHOLD, weak_identity_threshold: float = WEAK_IDENTITY_THRESHOLD,
) -> IdentityReport:
    """Give every fragment that needs one an embedding of its best face; look-alike fragments of one shot share one
    after a check (step 2 of the module docstring)."""
    report = IdentityReport()
    if embedder is None:
        return report
    height, width = frames.shape[1:3]
    started = time.perf_counter()

    def best_face(fragment: Fragment) -> tuple[float, bool, int]:
        scored = [(face_quality(fragment, t, width, height), t) for t in fragment.frames]
        (quality, weak), t = max(scored, key=lambda item: (item[0][0], -item[1]))
        return quality, weak, t

    def embed(fragment: Fragment) -> bool:
        _, weak, t = best_face(fragment)
        if fragment.side(t) < MIN_EMBED_FACE:
            return False
        fragment.embedding = embedder.embed(frames[t], fragment.detections[t].box)
        fragment.embedded_at, fragment.weak = [t], weak
        report.embedded += 1
        return True

    for set_index, members in enumerate(look_alike_sets(fragments_to_embed(fragments))):
        if len(members) == 1:
            embed(members[0])
            continue
        first = max(members, key=lambda f: (best_face(f)[0], -f.fragment_id))
        # The check: the set's best face against its least look-alike member (among those with a clean face, if
        # any) and, in sets of 4 or more, also against the member farthest in time from both.
        others = [f for f in members if f is not first]
        others = [f for f in others if not best_face(f)[1]] or others
        checks = [max(others, key=lambda f: (signature_change(first.signature, f.signature), best_face(f)[0],
                                            -f.fragment_id))]
        rest = [f for f in others if f is not checks[0]]
        if len(members) >= 4 and rest:
            checks.append(max(rest, key=lambda f: (min(abs(f.frames[0] - g.frames[0]) for g in (first, checks[0])),
                                                   -f.fragment_id)))
        if embed(first) and all(embed(f) for f in checks):
            weak = first.weak or any(f.weak for f in checks)
            threshold = weak_identity_threshold if weak else identity_threshold
            checked = [first, *checks]
            if all(face_distance(x.embedding, y.embedding) <= threshold for x in checked for y in checked):
                shared = np.mean([f.embedding for f in checked], axis=0)
                for fragment in members:
                    fragment.embedding, fragment.weak, fragment.look_alike = shared, weak, set_index
                continue
        for fragment in members:  # the check failed: everyone on their own
            if fragment.embedding is None:
                embed(fragment)
    report.milliseconds = (time.perf_counter() - started) * 1000.0
    return report


def group_fragments(
    fragments: list[Fragment],
    *,
    identity_threshold: float = IDENTITY_THRESHOLD,
    weak_identity_threshold: float = WEAK_IDENTITY_THRESHOLD,
    relink_max_gap: int = 16,
    relink_max_distance: float = 1.5,
    relink_max_size_ratio: float = 2.0,
) -> list[Group]:
    """Persons as groups of fragments (steps 3 and 4 of the module docstring)."""
    by_id = {fragment.fragment_id: fragment for fragment in fragments}
    groups = {fragment.fragment_id: Group([fragment.fragment_id], {fragment.fragment_id: "first"}) for fragment in fragments}

    def members(group: Group) -> list[Fragment]:
        return [by_id[i] for i in group.members]

    def representatives(group: Group) -> list[Fragment]:
        """A group's embedded fragments; its weak ones (small or border-cut faces) only if it has nothing better."""
        embedded = [f for f in members(group) if f.embedding is not None]
        return [f for f in embedded if not f.weak] or embedded

    def merge(a: int, b: int, how: str) -> None:
        # The group holding the earlier face keeps its key, so every person's earliest fragment is "first".
        keep, other = sorted((a, b), key=lambda key: (min(by_id[i].frames[0] for i in groups[key].members), key))
        absorbed = groups.pop(other)
        for fragment_id in absorbed.members:
            groups[keep].joins[fragment_id] = how if fragment_id == absorbed.members[0] else absorbed.joins[fragment_id]
        groups[keep].members = sorted(groups[keep].members + absorbed.members)

    # Step 3: identity.
    while True:
        best: tuple[float, int, int] | None = None
        keys = sorted(groups)
        for i, a in enumerate(keys):
            for b in keys[i + 1 :]:
                embedded_a, embedded_b = representatives(groups[a]), representatives(groups[b])
                if not embedded_a or not embedded_b or co_occur(members(groups[a]), members(groups[b])):
                    continue
                distance = float(np.mean([face_distance(x.embedding, y.embedding) for x in embedded_a for y in embedded_b]))
                weak = any(f.weak for f in embedded_a + embedded_b)
                if distance <= (weak_identity_threshold if weak else identity_threshold):
                    if best is None or distance < best[0]:
                        best = (distance, a, b)
        if best is None:
            break
        distance, a, b = best
        look = {f.look_alike for f in members(groups[a]) + members(groups[b])}
        merge(a, b, "look-alike (identity checked)" if len(look) == 1 and None not in look else f"identity {distance:.2f}")

    # Step 4: position, only between groups that identity could not compare.
    def comparable(a: Group, b: Group) -> bool:
        return any(f.embedding is not None for f in members(a)) and any(f.embedding is not None for f in members(b))

    def group_of(fragment_id: int) -> int:
        return next(key for key, group in groups.items() if fragment_id in group.members)

    for fragment in fragments:  # tracker-linked fragments
        if fragment.linked_from is None:
            continue
        a, b = group_of(fragment.linked_from), group_of(fragment.fragment_id)
        if a != b and not comparable(groups[a], groups[b]) and not co_occur(members(groups[a]), members(groups[b])):
            merge(min(a, b), max(a, b), "tracker")
    while True:  # re-link after a gap, inside a shot, closest pair first
        best = None
        for a_key, a in groups.items():
            a_last_fragment = max(members(a), key=lambda f: f.frames[-1])
            a_last = a_last_fragment.frames[-1]
            for b_key, b in groups.items():
                if b_key == a_key or comparable(a, b):
                    continue
                b_first_fragment = min(members(b), key=lambda f: f.frames[0])
                b_first = b_first_fragment.frames[0]
                if b_first <= a_last or b_first - a_last > relink_max_gap or a_last_fragment.shot != b_first_fragment.shot:
                    continue
                if co_occur(members(a), members(b)):
                    continue
                distance = continues(a_last_fragment.detections[a_last].box, b_first_fragment.detections[b_first].box,
                                     relink_max_distance, relink_max_size_ratio)
                if distance is not None and (best is None or distance < best[0]):
                    best = (distance, a_key, b_key)
        if best is None:
            break
        distance, a_key, b_key = best
        merge(a_key, b_key, f"position {distance:.2f}")
    return list(groups.values())


def first_appearance_key(group: Group, fragments: dict[int, Fragment]) -> tuple[int, float, float]:
    """Persons are numbered by first appearance: first frame, then left to right, then top to bottom."""
    first = min((fragments[i] for i in group.members), key=lambda f: (f.frames[0], box_center(f.detections[f.frames[0]].box)))
    x, y = box_center(first.detections[first.frames[0]].box)
    return first.frames[0], round(x, 1), round(y, 1)


def mean_embedding(group: Group, fragments: dict[int, Fragment]) -> np.ndarray | None:
    embeddings = [fragments[i].embedding for i in group.members if fragments[i].embedding is not None]
    return np.mean(embeddings, axis=0) if embeddings else None


