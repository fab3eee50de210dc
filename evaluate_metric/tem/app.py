"""Gradio demo of the TEM metric: a prediction and a reference caption in, the scores and the matched-event table out.

Plain Gradio (evaluate 0.4.6's launch_gradio_widget does not work with Gradio 6). Run: python app.py
"""

from __future__ import annotations

from pathlib import Path

import evaluate
import gradio as gr

# Loaded by file path: in a Space the folder is not named "tem", and evaluate.load(folder) looks for <folder>.py.
METRIC = evaluate.load(str(Path(__file__).resolve().parent / "tem.py"))

TABLE_COLUMNS = ["prediction event", "phase", "reference event", "ref. phase", "similarity", "relation", "in order"]

EXAMPLE_REFERENCE = (
    "This video shows the changing facial expressions of a young woman. She has long black hair.\n"
    "At the beginning of the video, she raises her eyebrows and opens her mouth slightly. As the video progresses, "
    "she blinks and turns her head to the left. In the middle of the video, she smiles, revealing her upper teeth. "
    "Towards the end of the video, she lowers her head and closes her eyes."
)
EXAMPLE_PREDICTION = (
    "The video shows a woman with dark hair. Initially, her eyebrows lift and her mouth opens a little. Then she "
    "blinks. Midway through, she closes her eyes. Finally, she smiles and her upper teeth show."
)


def score_captions(prediction: str, reference: str) -> tuple[dict, list[list]]:
    """(scores, matched-event table rows) for one caption pair."""
    result = METRIC.compute(predictions=[prediction or ""], references=[reference or ""], return_per_sample=True,
                            return_events=True)
    sample = result["per_sample"][0]
    if sample.get("failed"):  # only an LLM backend can fail a sample; the demo uses the offline default
        return {"failed": True}, []
    scores = {key: round(value, 4) for key, value in sample.items()}
    rows = [
        [row["prediction_event"] or "", row["prediction_phase"], row["reference_event"] or "", row["reference_phase"],
         None if row["similarity"] is None else round(row["similarity"], 3), row["relation"], row["in_order"]]
        for row in result["events"][0]["table"]
    ]
    return scores, rows


with gr.Blocks(title="TEM: Temporal Event Matching") as demo:
    gr.Markdown(
        "# TEM: Temporal Event Matching\n"
        "Content (AutoDQ-style event entailment) and temporal-order consistency (LCS of matched events) of a "
        "video caption against a reference. TEM = content F1 x temporal. Default backends run offline: rule-based "
        "event extraction, relations by rules on parsed facial events (face part, action, direction, negation), and "
        "all-MiniLM-L6-v2 only for events outside the lexicon. See the metric card for the exact definition."
    )
    with gr.Row():
        prediction_box = gr.Textbox(label="Prediction", lines=8, value=EXAMPLE_PREDICTION)
        reference_box = gr.Textbox(label="Reference", lines=8, value=EXAMPLE_REFERENCE)
    button = gr.Button("Score", variant="primary")
    scores_view = gr.JSON(label="Scores")
    table_view = gr.Dataframe(headers=TABLE_COLUMNS, label="Matched events", wrap=True)
    button.click(score_captions, inputs=[prediction_box, reference_box], outputs=[scores_view, table_view])

if __name__ == "__main__":
    demo.launch()
