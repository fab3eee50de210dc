"""The Space's caption model: loaded once at start-up, streamed token by token, fed the page's own analysis (the
decoded clip and its track objects) so nothing is decoded or tracked again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import gradio as gr

from space_config import user_message


class CaptionModelError(ValueError):
    """The configured caption model could not be loaded or run; the message names the model and the problem."""


class CaptionModel:
    """The caption model, loaded once at start-up with `facetrack.inference.captioner.load_captioner` (AutoProcessor +
    AutoModelForImageTextToText, remote code; CUDA when available, else CPU), streamed token by token."""

    def __init__(self, model_path: str, max_new_tokens: int = 256) -> None:
        from facetrack.inference.captioner import load_captioner

        self.model_path = model_path
        self.max_new_tokens = max_new_tokens
        looks_like_hub_id = model_path.count("/") == 1 and not model_path.startswith((".", "/", "~"))
        if not Path(model_path).exists() and not looks_like_hub_id:
            raise CaptionModelError(
                f"the caption model {model_path!r} (FACETRACK_MODEL / --model) is neither an existing folder nor a "
                "Hub id of the form owner/name"
            )
        try:
            self.captioner = load_captioner(model_path)
        except (OSError, ValueError, KeyError) as error:
            raise CaptionModelError(
                f"could not load the caption model {model_path!r} (FACETRACK_MODEL / --model): "
                f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            ) from error

    @property
    def notice(self) -> str | None:
        """The model card's notice of what the model is (a demonstration model's warning, or what the CPU
        expression-stream model is), shown beside its captions; None for a Hub id or a card without one."""
        card = Path(self.model_path) / "README.md"
        if not card.is_file():
            return None
        for line in card.read_text(encoding="utf-8").splitlines():
            if line.startswith("> **"):
                return line[2:]
        return None

    def stream(self, video_path: str, analysis=None) -> Iterator[str]:
        """Yield the caption as it grows (generate runs in a thread feeding a TextIteratorStreamer). With the page's
        analysis, the model sees exactly the frames and face boxes the page shows, and nothing is decoded or
        tracked again; without one (an API call with the video alone) the video is decoded and tracked here."""
        try:  # the FEC-Bench prompt
            if analysis is not None:
                pieces, _ = self.captioner.stream_caption(analysis.clip, max_new_tokens=self.max_new_tokens,
                                                          face_track=analysis.track)
            else:
                pieces, _ = self.captioner.stream_caption(video_path, max_new_tokens=self.max_new_tokens)
        except ValueError as error:  # the processor names the problem (bad track, undecodable frames, ...)
            raise gr.Error(
                f"Could not prepare the video for the caption model: {user_message(error, video_path)}"
            ) from error
        text = ""
        try:
            for piece in pieces:
                text += piece
                yield text
        except RuntimeError as error:
            raise gr.Error(f"Caption {user_message(error, video_path)}") from error
