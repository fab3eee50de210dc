"""TEM's LLM backends: event extraction and the relation judge, in two named protocols.

- `protocol="autodq"` (default for the LLM backends): AutoDQ exactly as Tarsier's published code runs it
  (bytedance/tarsier, evaluation/metrics/evaluate_dream_gpt.py): both captions lower-cased (and, for extraction,
  double quotes turned into single quotes); its extraction prompt (a Python dict {"events": [...]}, read with
  ast.literal_eval) and its entailment prompt (each event of one caption against the *whole* other caption, a JSON
  {"events": [{"event", "relationship", "reason"}]}, cleaned with Tarsier's string repairs); up to 10 tries per call
  until the answer parses and, for the judge, has one item per event with a valid class; a sample whose calls all
  fail is dropped from the averages and counted (`num_failed`). Only "entailment" counts, for recall and precision.
- `protocol="facetrack"`: our face-specific variant: a prompt that asks for facial actions only, and a judge that
  also names the matching event (so TEM's alignment comes from the judge itself).

Retries: the first try of every call is greedy (temperature 0, reproducible); try k >= 1 is sampled at
temperature 1.0 (AutoDQ's calls use the API's default temperature, 1.0) with seed k, so a retry can differ. Every
answer is cached on disk by (model, settings, prompt, try), so a rerun makes no calls and gives the same scores.
"""

from __future__ import annotations

import ast
import json
import re
import warnings

import numpy as np

from facetrack.evaluation.tem.events import Event, parse_json_list
from facetrack.inference.llm import LLMClient, LLMError
from facetrack.evaluation.tem.relations import CONTRADICTION, ENTAILMENT, NEUTRAL, Relations

AUTODQ_MAX_TRIES = 10  # Tarsier's max_retry


class SampleFailed(Exception):
    """Every try of an LLM call for this sample gave an unusable answer (AutoDQ drops such a sample)."""


# ------------------------------------------------------------------------------------------------ AutoDQ
# Verbatim from Tarsier's call_azure_gpt_api_for_events (typos included: they are part of the protocol).
AUTODQ_EXTRACTION_PROMPT = (
    "Bellow is a description of a video clip:\n"
    "Video Description: {caption}\n\n"
    "Extract at most 10 key events from the above video description paragraph. Requirements\n:"
    "- An event must include an action, motion or movement (NOT STATIC INFORMATION). DON'T repeat same events.\n"
    "- Every event is represented by a brief sentence within 10 words, with a subject, a predicate and optionally an object, avoid unnecessary appearance descriptions.\n"
    "- Every event must be atomic, meaning that it cannot be further split into multiple events.\n"
    "- Scene cuts and camera motions are NOT events.\n"
    "- Substitute pronouns by the nouns they refer to.\n\n"
    "Please generate the response in the form of a Python dictionary string with keys \"events\". The value of \"events\" is a List(str), of which each item is an event. "
    "DO NOT PROVIDE ANY OTHER OUTPUT TEXT OR EXPLANATION. Only provide the Python dictionary string. "
    "For example, your response should look like this: {{\"events\": [event1, event2, ...]}}"
)
# Verbatim from Tarsier's call_azure_gpt_api; {events} is the Python repr of the event list.
AUTODQ_JUDGE_PROMPT = (
    "Given a video description and a list of events. For each event, classify the relationship between the video description and the event into three classes: entailment, neutral, contradiction.\n"
    "- \"entailment\" means that the video description entails the event.\n"
    "- \"contradiction\" means that some detail in the video description contradicts with the event.\n"
    "- \"neutral\" means that the relationship is neither \"entailment\" or \"contradiction\".\n\n"
    "Video Description:\n{description}\n\n"
    "Events: {events}\n"
    "Output a JSON formed as:\n"
    "{{\n"
    "  \"events\": [\n"
    "    {{\"event\": \"copy an event here\", \"relationship\": \"put class name here\",  \"reason\": \"give your reason here\"}},\n"
    "    ...\n"
    "  ]\n"
    "}}\n\n"
    "DO NOT PROVIDE ANY OTHER OUTPUT TEXT OR EXPLANATION. Only output the JSON. Output:"
)


def strip_code_fence(answer: str) -> str:
    if answer.startswith("```json"):
        return answer.replace("```json", "").replace("```", "").strip()
    if answer.startswith("```python"):
        return answer.replace("```python", "").replace("```", "").strip()
    return answer


def clean_judge_answer(answer: str) -> str:
    """Tarsier's repairs of a judge answer (try_call_api_for_eval), in its order."""
    answer = answer.strip()
    answer = re.sub(r"\n+", "\n", answer)
    answer = re.sub(r"\s+", " ", answer)
    answer = strip_code_fence(answer)
    if not answer.startswith("{"):
        answer = "{" + answer
    if not answer.endswith("}"):
        answer = answer + "}"
    answer = answer.replace("True", "true").replace("False", "false")
    answer = answer.replace("} {", "}, {").replace("}{", "}, {")
    answer = answer.replace(",\n}", "\n}").replace(", \n}", "\n}").replace(", }", "}").replace(",}", "}")
    answer = answer.replace(",\n]", "\n]").replace(", \n]", "\n]").replace(", ]", "]").replace(",]", "]")
    answer = answer.replace("[Placeholder]", "null")
    return answer.replace("{Events:", "").strip()


def _ask(client: LLMClient, prompt: str, attempt: int) -> str | None:
    try:
        return client.complete(prompt, attempt=attempt)
    except LLMError as error:
        if "could not reach" in str(error):
            raise  # a wrong URL is the user's to fix, not a sample to drop
        warnings.warn(f"TEM: LLM call failed (try {attempt + 1}): {error}")
        return None


class AutoDQEventExtractor:
    """AutoDQ's event extraction (see the module docstring). Events have no phases: position = phase."""

    name = "llm"
    protocol = "autodq"

    def __init__(self, client: LLMClient, max_tries: int = AUTODQ_MAX_TRIES):
        self.client = client
        self.max_tries = max_tries

    def extract_one(self, caption: str) -> list[Event]:
        prompt = AUTODQ_EXTRACTION_PROMPT.format(caption=caption.lower().replace('"', "'"))
        for attempt in range(self.max_tries):
            answer = _ask(self.client, prompt, attempt)
            if answer is None:
                continue
            try:
                events = ast.literal_eval(strip_code_fence(answer))["events"]
            except (ValueError, SyntaxError, TypeError, KeyError, MemoryError, RecursionError):
                continue
            if isinstance(events, list) and (len(events) == 0 or isinstance(events[0], str)):
                return [Event(text=str(text), phase=index, source=str(text)) for index, text in enumerate(events)]
        raise SampleFailed(f"event extraction gave no usable answer in {self.max_tries} tries")

    def extract(self, captions: list[str]) -> list[list[Event] | None]:
        """Events per caption; None for a caption whose extraction failed (its sample is dropped)."""
        results: list[list[Event] | None] = []
        for caption in captions:
            try:
                results.append(self.extract_one(caption))
            except SampleFailed:
                results.append(None)
        return results


class AutoDQJudge:
    """AutoDQ's entailment judge: the events of one caption against the whole other caption, twice per sample
    (reference events vs prediction: recall; predicted events vs reference: precision).

    TEM's order step needs pairs, which this judge does not give: entailed events are paired by the offline
    lexicon classifier among themselves (`pairing`), and an entailed event with no such partner stays unaligned."""

    name = "llm"
    protocol = "autodq"

    def __init__(self, client: LLMClient, pairing=None, max_tries: int = AUTODQ_MAX_TRIES):
        self.client = client
        self.pairing = pairing
        self.max_tries = max_tries

    def judge(self, events: list[Event], description: str) -> list[str]:
        """One class per event; raises SampleFailed after max_tries unusable answers."""
        if not events:
            return []  # AutoDQ scores no events as 1.0 whatever the judge says; no call is made
        texts = [event.text for event in events]
        prompt = AUTODQ_JUDGE_PROMPT.format(description=description.lower(), events=texts)
        for attempt in range(self.max_tries):
            answer = _ask(self.client, prompt, attempt)
            if answer is None:
                continue
            try:
                filled = json.loads(clean_judge_answer(answer))["events"]
                labels = [str(item["relationship"]).strip().lower() for item in filled]
            except (ValueError, TypeError, KeyError):
                continue
            if len(labels) == len(texts) and all(label in (ENTAILMENT, NEUTRAL, CONTRADICTION) for label in labels):
                return labels
        raise SampleFailed(f"the judge gave no usable answer in {self.max_tries} tries")

    def classify(self, samples: list[tuple[list[Event], list[Event], str, str]]) -> list[Relations | None]:
        results: list[Relations | None] = []
        pairs = self.pairing.classify(samples) if self.pairing is not None else None
        for index, (pred, ref, prediction, reference) in enumerate(samples):
            try:
                ref_labels = self.judge(ref, prediction)  # recall
                pred_labels = self.judge(pred, reference)  # precision
            except SampleFailed:
                results.append(None)
                continue
            relations = Relations.empty(len(pred), len(ref))
            relations.pred_supported = np.array([label == ENTAILMENT for label in pred_labels], bool)
            relations.ref_supported = np.array([label == ENTAILMENT for label in ref_labels], bool)
            if pairs is not None and pred and ref:
                offline = pairs[index]
                both = relations.pred_supported[:, None] & relations.ref_supported[None, :]
                relations.pred_entailed = offline.pred_entailed & both
                relations.ref_entailed = offline.ref_entailed & both
                relations.similarity = offline.similarity
            results.append(relations)
        return results


# ------------------------------------------------------------------------------------------------ facetrack
FACETRACK_EXTRACTION_PROMPT = """You are given a caption that describes how a person's face changes during a video.
Extract at most 10 key events from the caption, in the order they happen in the video.
Rules:
- An event is an action or motion of the face or head (for example "the man raises his eyebrows"), never static appearance (hair, skin, clothes, age, glasses).
- Each event is atomic (one action), shorter than 10 words, and has the form subject-predicate(-object).
- Replace every pronoun with the person it refers to (for example "he" becomes "the man").
- Answer with only a JSON list of strings, for example ["the man raises his eyebrows", "the man smiles"].

Caption: \"\"\"{caption}\"\"\"
Events:"""


class FaceTrackEventExtractor:
    """Our face-specific extraction prompt; answers without a JSON list fall back to one event per line."""

    name = "llm"
    protocol = "facetrack"

    def __init__(self, client: LLMClient, prompt: str = FACETRACK_EXTRACTION_PROMPT, max_events: int = 10):
        self.client = client
        self.prompt = prompt
        self.max_events = max_events

    def extract_one(self, caption: str) -> list[Event]:
        if not caption.strip():
            return []
        answer = self.client.complete(self.prompt.format(caption=caption))
        items = parse_json_list(answer)
        if items is None:
            warnings.warn(f"TEM: the LLM extractor answered without a JSON list; reading lines instead: {answer[:200]!r}")
            items = [line.strip(" -*\t0123456789.)") for line in answer.splitlines()]
        texts = [re.sub(r"\s+", " ", str(item)).strip(" .").lower() for item in items]
        texts = [text for text in texts if text][: self.max_events]
        return [Event(text=text, phase=index, source=text) for index, text in enumerate(texts)]

    def extract(self, captions: list[str]) -> list[list[Event]]:
        return [self.extract_one(caption) for caption in captions]


FACETRACK_JUDGE_PROMPT = """You compare events against a video caption about a person's facial expressions.
Caption: \"\"\"{caption}\"\"\"
Events of the caption, numbered:
{caption_events}

For each event below, decide whether the caption entails it, is neutral to it, or contradicts it, and give the number of the caption event it corresponds to (null if none).
Events to judge:
{events}

Answer with only a JSON list with one object per event to judge, in order, like
[{{"event": 1, "relation": "entailment", "match": 2}}, {{"event": 2, "relation": "neutral", "match": null}}]"""


class FaceTrackJudge:
    """Our face-specific judge: each event of one caption against the other caption and its numbered events; the
    answer names the matching event, which TEM's alignment uses (2 LLM calls per sample)."""

    name = "llm"
    protocol = "facetrack"

    def __init__(self, client: LLMClient, prompt: str = FACETRACK_JUDGE_PROMPT):
        self.client = client
        self.prompt = prompt

    def _judge(self, events: list[Event], other_events: list[Event], other_caption: str) -> list[tuple[str, int | None]]:
        prompt = self.prompt.format(
            caption=other_caption,
            caption_events="\n".join(f"{k + 1}. {e.text}" for k, e in enumerate(other_events)) or "(none)",
            events="\n".join(f"{k + 1}. {e.text}" for k, e in enumerate(events)),
        )
        items = parse_json_list(self.client.complete(prompt)) or []
        judged: list[tuple[str, int | None]] = [(NEUTRAL, None)] * len(events)
        for position, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            index = item.get("event", position + 1)
            index = index - 1 if isinstance(index, int) else position
            relation = str(item.get("relation", NEUTRAL)).lower()
            relation = next((r for r in (ENTAILMENT, CONTRADICTION, NEUTRAL) if relation.startswith(r[:6])), NEUTRAL)
            match = item.get("match")
            match = match - 1 if isinstance(match, int) and 1 <= match <= len(other_events) else None
            if 0 <= index < len(events):
                judged[index] = (relation, match)
        if not items:
            warnings.warn("TEM: the LLM judge answered without a JSON list; its events count as neutral")
        return judged

    def classify(self, samples: list[tuple[list[Event], list[Event], str, str]]) -> list[Relations]:
        results = []
        for pred, ref, prediction, reference in samples:
            relations = Relations.empty(len(pred), len(ref))
            relations.pred_supported = np.zeros(len(pred), bool)
            relations.ref_supported = np.zeros(len(ref), bool)
            if pred and ref:
                for i, (relation, j) in enumerate(self._judge(pred, ref, reference)):
                    relations.pred_supported[i] = relation == ENTAILMENT
                    if j is not None:
                        relations.pred_entailed[i, j] = relation == ENTAILMENT
                        relations.contradiction[i, j] |= relation == CONTRADICTION
                        relations.similarity[i, j] += 0.5 * (relation == ENTAILMENT)
                for j, (relation, i) in enumerate(self._judge(ref, pred, prediction)):
                    relations.ref_supported[j] = relation == ENTAILMENT
                    if i is not None:
                        relations.ref_entailed[i, j] = relation == ENTAILMENT
                        relations.contradiction[i, j] |= relation == CONTRADICTION
                        relations.similarity[i, j] += 0.5 * (relation == ENTAILMENT)
            results.append(relations)
        return results
