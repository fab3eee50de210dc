"""Where does a model with the expression stream look while it writes each phase of a caption?

    python benchmarks/stream_attention.py MODEL_DIR VIDEO [VIDEO ...] [--frames 16]

For each clip: its measured caption (the rules' caption, what the CPU model is trained to write) is fed to the model
after the prompt (teacher forcing), and for the caption's tokens of each phase ("At the beginning" ... "Towards the
end") the script prints the attention mass they give to the `<expression>` tokens of the frames in each caption
phase (mean over heads, by thirds of the layers; frames are put in phases by the same rule as the caption,
`facetrack.expressions.caption.frame_phases`). A model that reads the stream phase by phase puts the mass of a
phase's words on that phase's frames (a diagonal); a model that tells a story from the first frames looks at the
first phase whatever it writes. Diagnostic, CPU, about 10 s a clip.
"""

from __future__ import annotations

import argparse

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from facetrack.analysis.video_analysis import analyze_video
from facetrack.expressions.caption import PHASES, frame_phases, measured_caption_text

PROMPT = "Describe how the person's facial expression changes over the video."


def phase_of_caption_tokens(tokenizer, ids: list[int]) -> list[int]:
    """For each caption token, the index of the last phase opening ("At the beginning", ...) written so far (-1
    before the first)."""
    phases, text, current = [], "", -1
    for token_id in ids:
        text += tokenizer.decode([token_id])
        for index, words in enumerate(PHASES):
            if text.endswith(words):
                current = index
        phases.append(current)
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("videos", nargs="+")
    parser.add_argument("--frames", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(2)
    processor = AutoProcessor.from_pretrained(args.model, trust_remote_code=True)
    model = AutoModelForImageTextToText.from_pretrained(args.model, trust_remote_code=True,
                                                        attn_implementation="eager").eval()
    if not processor.expression_tokens_per_frame:
        raise SystemExit(f"{args.model} has no expression stream")
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": PROMPT}]}]
    prompt = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    for video in args.videos:
        analysis = analyze_video(video, num_frames=args.frames, expressions=True)
        if analysis.expressions is None:
            print(f"{video}: no measured face ({analysis.expression_problem})")
            continue
        timeline = analysis.expressions.timeline
        phases_of_frames = frame_phases(timeline.timestamps, timeline.measured)
        caption = measured_caption_text(analysis.measured_caption)
        inputs = processor(text=[prompt + caption], videos=[video], num_frames=args.frames, return_tensors="pt")
        ids = inputs["input_ids"][0]
        frame_positions = (ids == processor.expression_token_id).nonzero().flatten()
        per_frame = processor.expression_tokens_per_frame
        prompt_length = len(processor.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        caption_phases = phase_of_caption_tokens(processor.tokenizer, ids[prompt_length:].tolist())
        with torch.no_grad():
            attentions = torch.stack([layer[0] for layer in model(**inputs, output_attentions=True).attentions])
        print(f"\n{video}: {len(frame_positions) // per_frame} frames, frames per caption phase "
              f"{[phases_of_frames.count(p) for p in range(len(PHASES))]}\n  {caption}")
        layers = attentions.shape[0]
        for name, part in (("first third", slice(0, layers // 3)), ("second third", slice(layers // 3, 2 * layers // 3)),
                           ("last third", slice(2 * layers // 3, layers)), ("all layers", slice(None))):
            if len(attentions[part]) == 0:  # a model of fewer than 3 layers has empty thirds
                continue
            mass = attentions[part].mean((0, 1))  # query x key, averaged over these layers and the heads
            rows = []
            for phase in range(len(PHASES)):
                queries = [prompt_length + i for i, p in enumerate(caption_phases) if p == phase]
                if not queries:
                    continue
                on_frames = mass[queries][:, frame_positions].mean(0)  # per expression token
                by_phase = [float(on_frames[[k for k in range(len(frame_positions))
                                             if phases_of_frames[k // per_frame] == p]].sum())
                            for p in range(len(PHASES))]
                rows.append(f"phase {phase + 1}: {sum(by_phase):.3f} = " + " ".join(f"{m:.3f}" for m in by_phase))
            print(f"  {name:12s} " + " | ".join(rows))


if __name__ == "__main__":
    main()
