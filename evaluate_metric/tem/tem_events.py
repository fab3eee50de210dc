"""Event extraction for TEM: turn a caption into an ordered list of atomic events, each with a phase index.

Two extractors share one interface, `extract(captions) -> list[list[Event]]`:
- `RuleEventExtractor` (default, no model): built for FEC-Bench-style captions, which describe the face in phases
  ("At the beginning...", "As the video progresses...", "In the middle...", "Towards the end...").
- `LLMEventExtractor`: an AutoDQ-style prompt sent to any `LLMClient` (local transformers model or an
  OpenAI-compatible endpoint), outputs cached on disk.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import asdict, dataclass

from .tem_llm import LLMClient

# The subject every pronoun is resolved to. Gender and age are appearance, which TEM (like AutoDQ) leaves out:
# a neutral subject keeps "he blinks" and "she blinks" the same event (MiniLM scores "the man blinks" vs
# "the woman blinks" at only 0.57, which would turn an appearance error into a missed action).
SUBJECT = "the person"


@dataclass(frozen=True)
class Event:
    text: str  # atomic event, pronouns resolved, lower case, e.g. "the person raises the person's eyebrows"
    phase: int  # 0-based order of the phase (time segment) the caption puts this event in
    source: str = ""  # the caption text it came from, for the matched-event table

    def to_dict(self) -> dict:
        return asdict(self)


# A sentence (or a clause after "then") that starts with one of these opens a new phase of the video.
_PHASE_MARKER = re.compile(
    r"^(?:"
    r"(?:at|in|from) the (?:very )?(?:beginning|start|outset|opening)"
    r"|initially|at first|first of all|to begin with"
    r"|as (?:the )?(?:video|clip|time) (?:progresses|continues|goes on|unfolds|proceeds|advances|plays|passes|moves on)"
    r"|then|next|subsequently|afterwards?|after (?:that|this|a (?:while|moment))|later(?: on)?|following (?:this|that)"
    r"|shortly after(?:wards)?|soon after(?:wards)?|in the following (?:part|moments?|segment)"
    r"|(?:in|during|around|at|towards?|from|by) the (?:middle|mid(?:dle)? ?(?:part|section|point|stage))"
    r"|midway(?: through)?|halfway(?: through)?"
    r"|(?:in|during|from) the (?:later|latter|final|last|second|closing|ending) (?:part|half|stage|portion|section|moments?|segment)"
    r"|towards? the (?:end|close|conclusion)|(?:at|by|near) the (?:end|close|conclusion)"
    r"|finally|eventually|in the end|lastly|ultimately|throughout the rest"
    r")\b",
    re.IGNORECASE,
)
# How far a marker phrase reaches: "At the beginning of the video," / "As the video progresses," / "Then,".
_MARKER_TAIL = re.compile(r"^(?:[^,]{0,40}?\bof (?:the|this) (?:video|clip)\s*,?|\s*,)\s*", re.IGNORECASE)

# Static appearance, not events: dropped wherever they stand.
_APPEARANCE = re.compile(
    r"^(?:this|the) (?:video|clip)\b|^in this (?:video|clip)\b"
    r"|^(?:he|she|they|the (?:man|woman|person|boy|girl))\s+(?:has|have|is wearing|wears|is dressed|appears to be (?:around|about|in)|is (?:around|about) \d)"
    r"|\byears? old\b|\bin (?:his|her|their) (?:\d0s|twenties|thirties|forties|fifties|sixties)\b"
    r"|^(?:his|her|their) (?:hair|skin|complexion|clothes|clothing|shirt|glasses|beard)\b",
    re.IGNORECASE,
)
# Statements that nothing happens are not events.
_NO_CHANGE = re.compile(
    r"\bno (?:obvious|significant|noticeable|apparent|major|clear|evident|visible|further|much)?\s*(?:change|changes|movement)\b"
    r"|\bremains? (?:unchanged|the same)\b|\bstays? the same\b",
    re.IGNORECASE,
)
# Clause starts that continue the previous clause rather than add an event ("..., revealing some teeth").
_CONTINUATION_STARTS = (
    "with", "revealing", "showing", "exposing", "which", "who", "as if", "making", "creating", "forming",
    "causing", "resulting", "indicating", "suggesting", "giving", "seemingly", "possibly", "probably",
    "as though", "like", "almost", "especially", "particularly", "including", "such as", "to the",
)
_FACE_NOUNS = {
    "eye", "eyes", "eyebrow", "eyebrows", "brow", "brows", "eyelid", "eyelids", "lid", "lids", "mouth", "lip",
    "lips", "corner", "corners", "head", "gaze", "teeth", "tooth", "cheek", "cheeks", "forehead", "nose",
    "nostrils", "chin", "jaw", "face", "expression", "eyeballs", "eyeball", "pupils", "wrinkles", "lines",
    "creases", "smile", "frown", "tongue", "neck", "shoulders", "body", "hand", "hands",
}
_SUBJECT_STARTS = {
    "he", "she", "they", "it", "his", "her", "their", "its", "the", "a", "an", "there", "this", "that", "both",
    "one", "some", "all", "person", "man", "woman",
}
# "they/them/their" are left alone: in these captions they mostly mean eyebrows or eyes, not the person.
_PRONOUNS = [
    (re.compile(r"\b(?:he|she)\b", re.IGNORECASE), SUBJECT),
    (re.compile(r"\b(?:his|her|hers)\b", re.IGNORECASE), f"{SUBJECT}'s"),
    (re.compile(r"\b(?:him|himself|herself)\b", re.IGNORECASE), SUBJECT),
]


def _split_sentences(text: str) -> list[str]:
    text = re.sub(r"\s+", " ", text).strip()
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z\"'(])", text) if s.strip()]


def _strip_marker(sentence: str) -> tuple[bool, str]:
    """Returns (starts a new phase, the sentence without its marker phrase)."""
    match = _PHASE_MARKER.match(sentence)
    if not match:
        return False, sentence
    rest = sentence[match.end():]
    # "At the beginning of the video, ..." : the marker regex stops at the first comma or reads on to it.
    tail = _MARKER_TAIL.match(rest)
    if tail and tail.end() < len(rest):
        rest = rest[tail.end():]
    return True, rest.strip()


def _split_on_and(clause: str) -> list[str]:
    """Split on "and"/"while"/"but" only where a new clause follows ("blinks and smiles", not "eyes and mouth")."""
    parts: list[str] = []
    words = clause.split()
    current: list[str] = []
    for index, word in enumerate(words):
        next_word = words[index + 1].lower().strip(",.;") if index + 1 < len(words) else ""
        if word.lower() in ("and", "while", "but", "whilst") and current and next_word:
            word_after = words[index + 2].lower().strip(",.;") if index + 2 < len(words) else ""
            starts_clause = (
                next_word in _SUBJECT_STARTS
                or (next_word.endswith(("s", "ed", "ing")) and next_word not in _FACE_NOUNS)
                # "and slightly opens ..." is a clause; "and slightly downwards" is not
                or (next_word.endswith("ly") and word_after.endswith(("s", "ed")) and word_after not in _FACE_NOUNS)
            )
            if starts_clause and len(current) >= 2:
                parts.append(" ".join(current))
                current = []
                continue
        current.append(word)
    if current:
        parts.append(" ".join(current))
    return parts


def _resolve_subject(clause: str) -> str:
    """Replace pronouns by SUBJECT; give subject-less clauses ("looks forward") the subject."""
    text = clause.strip(" ,.;:!?\"'").lower()
    if not text:
        return ""
    first = text.split()[0]
    for pattern, replacement in _PRONOUNS:
        text = pattern.sub(replacement, text)
    if first in _FACE_NOUNS:  # "eyebrows slightly furrowed" -> "the person's eyebrows slightly furrowed"
        text = f"{SUBJECT}'s {text}"
    elif first not in _SUBJECT_STARTS:  # a verb or adverb: "looks forward", "slightly opens ..."
        text = f"{SUBJECT} {text}"
    return re.sub(r"\s+", " ", text)


class RuleEventExtractor:
    """Offline, model-free event extraction for phase-structured facial-dynamics captions.

    1. Sentences. If any sentence starts with a phase marker, everything before the first marker is the static
       appearance description and is dropped; each marker ("At the beginning", "As the video progresses",
       "In the middle", "Towards the end", "Then", ...) opens a new phase. Without markers, each sentence is a phase.
    2. Sentences matching appearance patterns ("He has short hair", "The video shows ...") are dropped anywhere.
    3. Clauses: split on ";", ",", and "and"/"while"/"but" where a clause follows; "then" opens a new phase.
       Continuations (", revealing some teeth", ", with lines between them") stay with their clause.
    4. Pronouns become "the person"; subject-less clauses get it ("looks forward" -> "the person looks forward").
    5. "No obvious change" statements and fragments under two words are dropped.
    """

    name = "rules"

    def extract_one(self, caption: str) -> list[Event]:
        sentences = _split_sentences(caption)
        marked = [_strip_marker(sentence) for sentence in sentences]
        has_markers = any(is_marker for is_marker, _ in marked)
        events: list[Event] = []
        phase = -1
        seen_marker = False
        for is_marker, sentence in marked:
            if has_markers:
                if is_marker:
                    phase += 1
                    seen_marker = True
                elif not seen_marker:
                    continue  # the appearance introduction before the first phase marker
            else:
                phase += 1
            if not sentence or _APPEARANCE.search(sentence):
                continue
            # "then" inside a sentence opens a new phase: "puffs up his mouth, then slowly relaxes it".
            for then_index, segment in enumerate(re.split(r"(?:,\s*|\s+and\s+)(?:and\s+)?then\b,?\s*", sentence, flags=re.IGNORECASE)):
                if then_index > 0:
                    phase += 1
                for clause in self._clauses(segment):
                    text = _resolve_subject(clause)
                    if len(text.split()) < 2 or _NO_CHANGE.search(text):
                        continue
                    events.append(Event(text=text, phase=max(phase, 0), source=clause.strip()))
        return events

    @staticmethod
    def _clauses(segment: str) -> list[str]:
        clauses: list[str] = []
        for piece in re.split(r"\s*[;,:]\s*", segment):
            piece = piece.strip(" .!?")
            if not piece:
                continue
            lowered = piece.lower()
            is_continuation = lowered.startswith(_CONTINUATION_STARTS) or lowered.startswith(("and ", "or "))
            is_continuation = is_continuation and not lowered.startswith(("and then", "but "))
            is_continuation = is_continuation and not lowered.startswith(("and he ", "and she ", "and his ", "and her "))
            if clauses and (is_continuation or len(piece.split()) < 2):
                clauses[-1] = f"{clauses[-1]}, {piece}"
                continue
            clauses.append(piece)
        result: list[str] = []
        for clause in clauses:
            clause = re.sub(r"^(?:and|or|but)\s+", "", clause, flags=re.IGNORECASE)
            result.extend(_split_on_and(clause))
        return result

    def extract(self, captions: list[str]) -> list[list[Event]]:
        return [self.extract_one(caption) for caption in captions]


EXTRACTION_PROMPT = """You are given a caption that describes how a person's face changes during a video.
Extract at most 10 key events from the caption, in the order they happen in the video.
Rules:
- An event is an action or motion of the face or head (for example "the man raises his eyebrows"), never static appearance (hair, skin, clothes, age, glasses).
- Each event is atomic (one action), shorter than 10 words, and has the form subject-predicate(-object).
- Replace every pronoun with the person it refers to (for example "he" becomes "the man").
- Answer with only a JSON list of strings, for example ["the man raises his eyebrows", "the man smiles"].

Caption: \"\"\"{caption}\"\"\"
Events:"""


def parse_json_list(text: str) -> list | None:
    """The first JSON list in an LLM answer, or None."""
    start, end = text.find("["), text.rfind("]")
    if start == -1 or end <= start:
        return None
    try:
        value = json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, list) else None


class LLMEventExtractor:
    """AutoDQ-style extraction with an LLM: at most 10 atomic action events per caption, pronouns resolved.

    An LLM gives no phases: each event's phase is its position, so TEM's order check is strict for it.
    Answers that hold no JSON list fall back to one event per non-empty line, with a warning.
    """

    name = "llm"

    def __init__(self, client: LLMClient, prompt: str = EXTRACTION_PROMPT, max_events: int = 10):
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
