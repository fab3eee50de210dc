"""What a row of a FaceTrack-MM dataset release holds: its columns (`dataset_features`), the instruction prompts
(one picked per item by a stable hash of its id) and the chat-format conversation built from prompt and caption.

Where a caption comes from (`caption_source`): "human" (an annotation file's caption), "measured" (the clip's
measured expression caption, written by rule from its expression events, without the "Measured description ..."
label) or "rewritten" (that caption rewritten in FDA style by a language model given only the measured events)."""

from __future__ import annotations

import hashlib
from typing import Any

# The evaluation prompt used on FEC-Bench by the paper's authors' next model (../shared/PAPER.md).
FEC_BENCH_PROMPT = (
    "Please provide a detailed description of the facial appearance attributes and expression changes of the "
    "character in the video"
)

# Instruction prompts, one picked per item by a hash of its id (deterministic, reproducible across builds).
# The first one is the evaluation prompt used on FEC-Bench (see PAPER.md).
INSTRUCTION_TEMPLATES: tuple[str, ...] = (
    FEC_BENCH_PROMPT,
    "Describe how the facial expression of the main character changes over the course of the video.",
    "Watch the main character's face and describe, in order, how their expression evolves from beginning to end.",
    "What does the person in the video look like, and how do their eyebrows, eyes and mouth move over time?",
    "Give a detailed account of the main character's facial appearance and of every change in their expression.",
    "Describe the facial dynamics of the person in this video: appearance first, then the expression changes in "
    "temporal order.",
    "Explain how the main character's face moves throughout the clip, including head movements, blinks and mouth "
    "movements.",
    "Summarize the appearance of the central character and narrate the changes in their facial expression.",
)


def instruction_for(item_id: str) -> str:
    """The instruction prompt of one item: a template chosen by a stable hash of its id."""
    digest = hashlib.sha256(str(item_id).encode("utf-8")).digest()
    return INSTRUCTION_TEMPLATES[int.from_bytes(digest[:8], "big") % len(INSTRUCTION_TEMPLATES)]


CAPTION_SOURCES = ("human", "measured", "rewritten")


def build_messages(instruction: str, caption: str) -> list[dict[str, Any]]:
    """Chat-format conversation: the user sends the video and the instruction, the assistant answers the caption.
    Every content part has both `type` and `text` keys so the column has one Arrow schema (`text` is None for video)."""
    return [
        {"role": "user", "content": [{"type": "video", "text": None}, {"type": "text", "text": instruction}]},
        {"role": "assistant", "content": [{"type": "text", "text": caption}]},
    ]


def dataset_features():
    """The `datasets.Features` of every split."""
    from datasets import Features, List, Value, Video

    content_part = {"type": Value("string"), "text": Value("string")}
    return Features(
        {
            "id": Value("string"),
            "video": Video(),
            "caption": Value("string"),
            "instruction": Value("string"),
            "messages": List({"role": Value("string"), "content": List(content_part)}),
            "face_track": Value("string"),
            "has_face": Value("bool"),
            "caption_source": Value("string"),  # CAPTION_SOURCES
            "source_video": Value("string"),  # the video the clip comes from, relative to the video root
            "clip_start": Value("float64"),  # seconds into source_video; null: the row is the whole video
            "clip_end": Value("float64"),
        }
    )
