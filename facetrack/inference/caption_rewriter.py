"""Rewrite a clip's measured caption in the style of FDA's human captions with a chat model, given only the clip's
measured expression events as facts (`facetrack dataset build --videos DIR --rewrite-with MODEL`).

    rewriter = CaptionRewriter("path/to/chat-model")                          # a local transformers model (or .gguf)
    rewriter = CaptionRewriter("qwen2.5-7b-instruct", base_url="http://localhost:8000/v1")   # OpenAI-compatible
    caption = rewriter.rewrite(report)         # report: the clip's ExpressionReport (its events are the facts)

The measured caption is written by rule from the events and reads like a list; a language model can phrase the same
events as FDA's annotators did. It is given nothing else (no frames, no appearance), and told to add nothing, so the
rewrite says no more than was measured. The prompt is versioned (`PROMPT_VERSION`): the dataset card records the
model, the version and the prompt itself, and a resumed build reuses only clips rewritten with the same ones.

The client (`facetrack.inference.llm.make_llm_client`: greedy decoding, a disk cache, so reruns give the same
text) is made on first use in the process that rewrites, and never pickled: the rewriter travels to local worker
processes and Ray actors as its settings, and each loads its model once.
"""

from __future__ import annotations

from typing import Any

PROMPT_VERSION = "1"
PROMPT = """You write the caption of a short video clip for a dataset of facial expression descriptions.
The only facts you have were measured from the face of the person in the clip, in time order (seconds from the
start of the {duration} s clip):

{facts}

Write one paragraph in this style: "This video shows the changing facial expressions of the person. At the
beginning, ... As the video progresses, ... In the middle, ... Towards the end, ...". Put each fact in the part of
the clip its time falls in, in order. Say that the expression stays the same where nothing was measured. Use only
these facts: do not describe appearance, clothing, surroundings, feelings or reasons that are not listed, and do not
mention measurements, numbers or these instructions. Answer with the paragraph only."""
NO_FACTS = "- no change of expression was measured"


class CaptionRewriter:
    """A picklable caption rewriter (see the module docstring). `model`: a local model path, or the model name at
    `base_url` (an OpenAI-compatible endpoint; `api_key` or $OPENAI_API_KEY). `cache_dir`: the answers' disk cache
    (default: `llm.default_cache_dir()`)."""

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None,
                 cache_dir: str | None = None, max_tokens: int = 400):
        if not model:
            raise ValueError("a caption rewriter needs a model: a local model path, or a model name with base_url")
        self.model = model
        self.base_url = base_url
        self.api_key = api_key
        self.cache_dir = cache_dir
        self.max_tokens = max_tokens
        self._client = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_client": None}

    def describe(self) -> dict[str, Any]:
        """What the dataset card records (never the API key)."""
        return {"model": self.model, "endpoint": self.base_url, "prompt_version": PROMPT_VERSION, "prompt": PROMPT,
                "max_tokens": self.max_tokens}

    def prompt_for(self, report) -> str:
        """The prompt for one clip's `ExpressionReport`: its events, each with its time span, as the facts."""
        timeline = report.timeline
        duration = float(timeline.timestamps[-1] - timeline.timestamps[0]) if len(timeline) else 0.0
        facts = [f"- {event.start:.1f}-{event.end:.1f} s: {event_fact(event)}"
                 for event in sorted(report.events, key=lambda event: (event.start, event.end, event.kind))]
        return PROMPT.format(duration=f"{duration:.1f}", facts="\n".join(facts) or NO_FACTS)

    def rewrite(self, report) -> str:
        """The rewritten caption of one clip; LLMError when the model cannot be reached or answers nothing."""
        from facetrack.inference.llm import LLMError, make_llm_client

        if self._client is None:
            self._client = make_llm_client(self.model, base_url=self.base_url, api_key=self.api_key,
                                           cache_dir=self.cache_dir, max_tokens=self.max_tokens)
        answer = " ".join(self._client.complete(self.prompt_for(report)).split())
        if not answer:
            raise LLMError(f"{self.model} answered an empty caption")
        return answer


def event_fact(event) -> str:
    """One measured event in words ("the person raises their eyebrows", "their expression changes from neutral to
    happy"), from the measured caption's own phrases."""
    from facetrack.expressions.caption import EMOTION_WORDS, PHRASES

    if event.kind == "blink":
        return "the person blinks"
    if event.kind == "emotion_shift":
        before, after = event.details.get("from"), event.details.get("to")
        return (f"their expression changes from {EMOTION_WORDS.get(before, before or 'another one')} to "
                f"{EMOTION_WORDS.get(after, after or 'another one')}")
    return PHRASES[event.kind].format(s="the person", p="their")
