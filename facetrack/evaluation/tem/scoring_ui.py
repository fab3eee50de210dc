"""Gradio demo of the TEM metric: a prediction and a reference caption in, the scores and the matched-event table out.

The one TEM scoring UI: the metric's own demo (`evaluate_metric/tem/app.py`) and the FaceTrack-MM Space's TEM tab both
build it with `build_scoring_ui`, so they label and fill the table the same way.

Plain Gradio (evaluate 0.4.6's launch_gradio_widget does not work with Gradio 6).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import gradio as gr
import pandas as pd  # a gradio dependency

from facetrack.evaluation.tem.metric import load_tem_metric

TABLE_COLUMNS = [
    "predicted event", "pred. phase", "reference event", "ref. phase", "similarity", "relation", "in order",
]
TABLE_LABEL = "Matched events, in the caption's order (then missed reference events)"
EXPLANATION = (
    "**TEM (Temporal Event Matching)** splits both captions into atomic events with their phase of the video "
    "(beginning, middle, end...), matches each predicted event to a reference event, and multiplies the content "
    "F1 by the share of matched events that keep the reference's order. Appearance sentences are not events."
)

EXAMPLE_REFERENCE = (
    "This video shows the changing facial expressions of a young woman. She has long black hair. At the beginning, "
    "she raises her eyebrows and opens her eyes wide. As the video progresses, she frowns and presses her lips "
    "together. Towards the end, she smiles and nods."
)
EXAMPLES = [
    [  # the same events, told in the opposite order: content is perfect, temporal order is not
        "This video shows a woman with black hair. At the beginning, she smiles and nods. In the middle, she frowns "
        "and tightens her lips. Towards the end, she lifts her eyebrows and widens her eyes.",
        EXAMPLE_REFERENCE,
    ],
    [  # the right order, but one event missed and one invented
        "A young woman is shown. At first, she raises her eyebrows and her eyes open wide. Then she frowns and "
        "shakes her head. Finally, she smiles.",
        EXAMPLE_REFERENCE,
    ],
]


@functools.cache
def load_metric():
    """The TEM metric, loaded once (its sentence encoder loads on the first compute)."""
    return load_tem_metric()


def event_rows(table: list[dict]) -> list[list]:
    """The metric's matched-event table as TABLE_COLUMNS rows: phases counted from 1, similarity to 2 decimals."""
    return [
        [
            row["prediction_event"] or "",
            "" if row["prediction_phase"] is None else row["prediction_phase"] + 1,
            row["reference_event"] or "",
            "" if row["reference_phase"] is None else row["reference_phase"] + 1,
            "" if row["similarity"] is None else round(row["similarity"], 2),
            row["relation"],
            "yes" if row["in_order"] else "no",
        ]
        for row in table
    ]


def score_captions(prediction: str, reference: str, metric=None) -> tuple[dict, list[list]]:
    """(scores of the pair, matched-event table rows); `metric` defaults to this folder's."""
    result = (metric or load_metric()).compute(predictions=[prediction or ""], references=[reference or ""],
                                               return_per_sample=True, return_events=True)
    sample = result["per_sample"][0]
    if sample.get("failed"):  # only an LLM backend can fail a sample; the demo uses the offline default
        return {"failed": True}, []
    return dict(sample), event_rows(result["events"][0]["table"])


def summary_text(scores: dict) -> str:
    """One pair's scores, in words (Markdown)."""
    if scores.get("failed"):
        return "**TEM could not score this pair**: the event extraction backend failed."
    return (
        f"**TEM {scores['tem']:.3f}** = content {scores['content_f1']:.2f} x (1 + temporal order "
        f"{scores['temporal']:.2f}) / 2\n\n"
        f"Content: {scores['num_prediction_events']} predicted and {scores['num_reference_events']} reference events; "
        f"precision {scores['content_precision']:.2f} (what the caption says that the reference supports, at the "
        f"right moment and degree), recall {scores['content_recall']:.2f} (what the reference says that the caption "
        f"covers). Order: {scores['lcs']} of {scores['num_aligned']} matched facial actions keep the reference's "
        f"phase order."
    )


def build_scoring_ui(
    metric_loader: Callable[[], object] = load_metric,
    caption_sources: Sequence[tuple[str, gr.components.Component, str]] = (),
) -> None:
    """The scoring UI, inside the caller's Blocks: two caption boxes, Score, examples, the summary and the table
    (API endpoint `score_caption`). `caption_sources`: (button label, component holding a caption, button elem_id):
    each button copies that caption into the box to score."""
    gr.Markdown(EXPLANATION)
    with gr.Row():
        prediction = gr.Textbox(label="Caption to score", lines=6, elem_id="tem-prediction")
        reference = gr.Textbox(label="Reference caption", lines=6, elem_id="tem-reference")
    if caption_sources:
        with gr.Row():
            for label, source, elem_id in caption_sources:
                button = gr.Button(label, size="sm", elem_id=elem_id)
                button.click(lambda text: text or "", inputs=source, outputs=prediction, queue=False,
                             api_visibility="private")
    score_button = gr.Button("Score", variant="primary", elem_id="tem-score")
    gr.Examples(examples=EXAMPLES, inputs=[prediction, reference], label="Examples")
    summary = gr.Markdown(label="TEM scores", elem_id="tem-summary")  # the label names the API output
    table = gr.Dataframe(headers=TABLE_COLUMNS, label=TABLE_LABEL, interactive=False, wrap=True, elem_id="tem-table")

    def score(prediction_text: str, reference_text: str):
        if not (prediction_text or "").strip() or not (reference_text or "").strip():
            raise gr.Error("Enter both a caption and a reference caption to score.", title="Missing text")
        scores, rows = score_captions(prediction_text, reference_text, metric_loader())
        return summary_text(scores), pd.DataFrame(rows, columns=TABLE_COLUMNS)

    score_button.click(score, inputs=[prediction, reference], outputs=[summary, table], api_name="score_caption")


def build_demo() -> gr.Blocks:
    with gr.Blocks(title="TEM: Temporal Event Matching") as demo:
        gr.Markdown(
            "# TEM: Temporal Event Matching\n"
            "Content (AutoDQ-style event entailment) and temporal-order consistency (LCS of matched events) of a "
            "video caption against a reference. Default backends run offline: rule-based event extraction, "
            "relations by rules on parsed facial events (face part, action, direction, negation), and "
            "all-MiniLM-L6-v2 only for events outside the lexicon. See the metric card for the exact definition."
        )
        build_scoring_ui()
    return demo
