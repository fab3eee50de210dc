"""Does a model's caption follow the clip it was shown? Each caption against its own clip's reference (the clip's
measured caption, or a person's) and against every other clip's reference, with TEM.

A model that ignores the video writes the same kind of caption for every clip: its TEM against its own clip's
reference is then no better than against another clip's. Used by the quickstart's report and by
benchmarks/bench_expression_stream.py.

    from facetrack.evaluation.follows_clip import caption_follows_clip
    result = caption_follows_clip(predictions, references, names, reversed_pairs=[("a.mp4", "a_reversed.mp4")])
    result["mean_own"], result["win_share"], result["clips"][0]["own"], result["reversed"][0]["follows_order"]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def caption_follows_clip(
    predictions: Sequence[str],
    references: Sequence[str],
    names: Sequence[str],
    reversed_pairs: Sequence[tuple[str, str]] = (),
    tem=None,
) -> dict:
    """TEM of each prediction against every reference (a len x len matrix; row = prediction, column = reference).

    Returns:
      clips: per clip {"name", "own" (TEM against its own reference), "other" (mean against the others), "wins"
        (other clips whose reference it matches worse than its own), "pairs"};
      mean_own, mean_other;
      wins / pairs / win_share: over ordered pairs (clip, other clip) whose references differ (a pair with equal
        references cannot be won, and is counted in `equal_reference_pairs`);
      distinct_predictions, distinct_references;
      differing_pairs / differing_pairs_with_different_captions: unordered pairs of clips whose references differ,
        and of those, the pairs whose predictions differ too;
      reversed: for each (forward, reversed) pair of names, whether the reversed clip's caption matches the reversed
        clip's reference better than the forward clip's (`follows_order`);
      matrix.
    """
    if not (len(predictions) == len(references) == len(names)):
        raise ValueError(f"got {len(predictions)} predictions, {len(references)} references, {len(names)} names")
    if len(names) < 2:
        raise ValueError("comparing a caption with other clips' references needs at least 2 clips")
    if len(set(names)) != len(names):
        raise ValueError("clip names must be unique")
    if tem is None:
        from facetrack.evaluation.tem.metric import load_tem_metric

        tem = load_tem_metric()
    n = len(names)
    per_sample = tem.compute(predictions=[predictions[i] for i in range(n) for _ in range(n)],
                             references=[references[j] for _ in range(n) for j in range(n)],
                             return_per_sample=True)["per_sample"]
    matrix = np.array([sample["tem"] for sample in per_sample], dtype=np.float64).reshape(n, n)
    clips, wins, pairs, equal = [], 0, 0, 0
    for i, name in enumerate(names):
        others = [j for j in range(n) if j != i]
        comparable = [j for j in others if references[j] != references[i]]
        equal += len(others) - len(comparable)
        won = sum(matrix[i, i] > matrix[i, j] for j in comparable)
        wins, pairs = wins + won, pairs + len(comparable)
        clips.append({"name": name, "prediction": predictions[i], "reference": references[i],
                      "own": float(matrix[i, i]), "other": float(matrix[i, others].mean()), "wins": int(won),
                      "pairs": len(comparable)})
    differing = [(i, j) for i in range(n) for j in range(i + 1, n) if references[i] != references[j]]
    position = {name: index for index, name in enumerate(names)}
    reversed_checks = []
    for forward, backward in reversed_pairs:
        if forward not in position or backward not in position:
            raise ValueError(f"reversed pair ({forward!r}, {backward!r}): not among the clips")
        f, b = position[forward], position[backward]
        reversed_checks.append({"forward": forward, "reversed": backward,
                                "reversed_caption_vs_reversed_reference": float(matrix[b, b]),
                                "reversed_caption_vs_forward_reference": float(matrix[b, f]),
                                "follows_order": bool(matrix[b, b] > matrix[b, f])})
    return {
        "clips": clips,
        "mean_own": float(np.diag(matrix).mean()),
        "mean_other": float((matrix.sum() - np.trace(matrix)) / (n * n - n)),
        "wins": int(wins), "pairs": int(pairs), "win_share": wins / pairs if pairs else float("nan"),
        "equal_reference_pairs": int(equal),
        "distinct_predictions": len(set(predictions)), "distinct_references": len(set(references)),
        "differing_pairs": len(differing),
        "differing_pairs_with_different_captions": sum(predictions[i] != predictions[j] for i, j in differing),
        "reversed": reversed_checks,
        "matrix": matrix.round(4).tolist(),
    }


def format_follows_clip(result: dict) -> list[str]:
    """The result as report lines: one per clip, then the totals."""
    lines = [f"{'clip':<28} {'own TEM':>8} {'others':>8} {'won':>7}"]
    for clip in result["clips"]:
        lines.append(f"{clip['name'][:28]:<28} {clip['own']:>8.3f} {clip['other']:>8.3f} "
                     f"{clip['wins']:>3}/{clip['pairs']:<3}")
    lines.append(f"mean TEM against its own clip's reference {result['mean_own']:.3f}, against other clips' "
                 f"{result['mean_other']:.3f}; own beats other in {result['wins']}/{result['pairs']} pairs "
                 f"({100 * result['win_share']:.0f} %); {result['distinct_predictions']} distinct captions for "
                 f"{len(result['clips'])} clips ({result['distinct_references']} distinct references)")
    for check in result["reversed"]:
        lines.append(f"reversed {check['reversed']}: TEM {check['reversed_caption_vs_reversed_reference']:.3f} "
                     f"against its own reference, {check['reversed_caption_vs_forward_reference']:.3f} against the "
                     f"forward clip's ({'tells the reversed order' if check['follows_order'] else 'does not'})")
    return lines
