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

from dataclasses import asdict, dataclass
from functools import lru_cache

from facetrack.evaluation.tem.lexicon import Lexicon, parse_event


# The subject every pronoun is resolved to (the lexicon's "subject"). Gender and age are appearance, which TEM
# (like AutoDQ) leaves out: a neutral subject keeps "he blinks" and "she blinks" the same event (MiniLM scores
# "the man blinks" vs "the woman blinks" at only 0.57, which would turn an appearance error into a missed action).
SUBJECT = "the person"


@dataclass(frozen=True)
class Event:
    text: str  # atomic event, pronouns resolved, lower case, e.g. "the person raises the person's eyebrows"
    phase: int  # 0-based order of the phase (time segment) the caption puts this event in
    source: str = ""  # the caption text it came from, for the matched-event table

    def to_dict(self) -> dict:
        return asdict(self)


def _phrase_alternation(phrases: list[str]) -> str:
    """Longest first, so "in the middle to later part" wins over "in the middle"."""
    return "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in sorted(phrases, key=len, reverse=True))


@lru_cache(maxsize=1)
def phase_marker_patterns() -> tuple[re.Pattern, re.Pattern]:
    """(marker at a clause start, where a clause may start inside a sentence), built from the lexicon's lists.

    A phase marker ("at the beginning", "in the later part" ...) opens a phase when followed by one of the tails
    ("of the video" ...) and/or a comma; a phase adverb ("then", "finally" ...) also when followed by a plain space.
    Inside a sentence a marker must follow ", " / "; " / ", and " / " and " (or, for "then", any space)."""
    data = Lexicon.load().data
    markers = _phrase_alternation(data["phase_markers"])
    tails = _phrase_alternation(data["phase_marker_tails"])
    adverbs = _phrase_alternation(data["phase_adverbs"])
    marker = (rf"(?:(?:{markers})(?:\s+(?:{tails}))\b\s*,?|(?:{markers})\s*,|(?:{adverbs})\b\s*,?)\s*")
    at_start = re.compile(rf"^{marker}", re.IGNORECASE)
    inside = re.compile(rf"(?:[,;]\s*(?:and\s+)?|\s+and\s+|\s+(?=then\b))(?={marker}\S)", re.IGNORECASE)
    return at_start, inside


def split_at_phase_markers(sentence: str) -> list[tuple[bool, str]]:
    """[(opens a phase, text without its marker)] for one sentence; the first piece may open no phase."""
    at_start, inside = phase_marker_patterns()
    pieces: list[tuple[bool, str]] = []
    starts = [0] + [m.end() for m in inside.finditer(sentence)]
    bounds = [m.start() for m in inside.finditer(sentence)] + [len(sentence)]
    for begin, end in zip(starts, bounds):
        piece = sentence[begin:end]
        match = at_start.match(piece)
        if match:
            pieces.append((True, piece[match.end():].strip(" ,;")))
        elif piece.strip(" ,;"):
            pieces.append((False, piece.strip(" ,;")))
    return pieces


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


def _split_sentences(text: str) -> list[str]:
    text = re.sub(r"\s+", " ", text).strip()
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z\"'(])", text) if s.strip()]


def _is_verb_like(word: str) -> bool:
    word = word.lower().strip(",.;")
    if word in _FACE_NOUNS or word in _SUBJECT_STARTS:
        return False
    return word.endswith(("s", "ed", "ing")) or word in Lexicon.load().action_of


def _subject_words(words: list[str]) -> list[str]:
    """The words before a clause's first verb-like word when they name a face part ("his mouth" in "his mouth
    opens"); else none (a person subject is added anyway)."""
    for index, word in enumerate(words):
        if _is_verb_like(word):
            subject = words[:index]
            return subject if any(w.lower().strip(",.;") in _FACE_NOUNS for w in subject) else []
    return []


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
                # "his mouth opens and closes": the new clause shares the subject ("his mouth"), so it keeps it
                subject = _subject_words(current)
                current = subject if subject and next_word not in _SUBJECT_STARTS else []
                continue
        current.append(word)
    if current:
        parts.append(" ".join(current))
    return parts


class PronounResolver:
    """he/she -> the subject; his/her -> the subject's; it/its -> the last singular face part named; they/them ->
    the last plural face part named when the verb after it fits that part ("his eyebrows furrow, then they relax"),
    else the subject ("they blink"); their + face part -> the subject's. State runs through one caption."""

    def __init__(self, lexicon: Lexicon):
        self.lexicon = lexicon
        self.subject = lexicon.subject
        words = lexicon.data["pronouns"]
        self.person_subject = set(words["person_subject"])
        self.person_possessive = set(words["person_possessive"])
        self.person_object = set(words["person_object"])
        self.part_singular = set(words["part_singular"])
        self.part_plural = set(words["part_plural"])
        self.plural_nouns = set(lexicon.data["plural_parts"])
        self.last_singular: str | None = None
        self.last_plural: str | None = None

    def _fits(self, noun: str, verb: str) -> bool:
        part = self.lexicon.part_of.get(noun)
        action = self.lexicon.action_of.get(verb)
        return bool(part and action and action in self.lexicon.units.get(part, {}))

    def resolve(self, clause: str) -> str:
        words = clause.split()
        out: list[str] = []
        for index, raw in enumerate(words):
            raw = raw.lower()
            word = raw.strip(",.;:!?\"'")
            tail = raw[len(raw.rstrip(",.;:!?\"'")):]  # punctuation after the word is kept
            following = words[index + 1].lower().strip(",.;:!?\"'") if index + 1 < len(words) else ""
            if word in self.person_subject or word in self.person_object:
                replacement = self.subject
            elif word in self.person_possessive:
                replacement = f"{self.subject}'s"
            elif word in self.part_singular and self.last_singular:
                replacement = f"{self.subject}'s {self.last_singular}"
            elif word == "their":
                replacement = f"{self.subject}'s"
            elif word in self.part_plural:
                verb = following if word == "they" else ""
                if self.last_plural and (word != "they" or self._fits(self.last_plural, verb)):
                    replacement = f"{self.subject}'s {self.last_plural}"
                else:
                    replacement = self.subject
            else:
                replacement = word
            out.append(replacement + tail if replacement != word else raw)
            if word in self.lexicon.part_of:
                if word in self.plural_nouns:
                    self.last_plural = word
                else:
                    self.last_singular = word
        return " ".join(out)


def _resolve_subject(clause: str, resolver: PronounResolver) -> str:
    """Pronouns resolved; subject-less clauses ("looks forward") get the subject."""
    text = clause.strip(" ,.;:!?\"'").lower()
    if not text:
        return ""
    first = text.split()[0]
    text = resolver.resolve(text)
    subject = resolver.subject
    if first in _FACE_NOUNS:  # "eyebrows slightly furrowed" -> "the person's eyebrows slightly furrowed"
        text = f"{subject}'s {text}"
    elif first not in _SUBJECT_STARTS:  # a verb or adverb: "looks forward", "slightly opens ..."
        text = f"{subject} {text}"
    return re.sub(r"\s+", " ", text)


class RuleEventExtractor:
    """Offline, model-free event extraction for phase-structured facial-dynamics captions (README "Rule extractor").

    1. Sentences, then phase markers inside them (the lexicon's lists, derived from the 800 FEC-Bench references):
       each marker opens a new phase, at a sentence start or after ", " / "; " / ", and " / " and "; "then" also
       after a plain space. Everything before the first marker is the appearance description and is dropped.
       Without any marker, each sentence is a phase.
    2. Sentences matching appearance patterns ("He has short hair", "The video shows ...") are dropped anywhere.
    3. Clauses: split on ";", ",", ":" and on "and"/"while"/"but" where a clause follows; continuations
       (", revealing some teeth", ", with lines between them") stay with their clause.
    4. Pronouns resolved (`PronounResolver`); subject-less clauses get the subject.
    5. "No obvious change" statements and fragments under two words are dropped.
    """

    name = "rules"

    def __init__(self):
        self.lexicon = Lexicon.load()

    def extract_one(self, caption: str) -> list[Event]:
        pieces: list[tuple[bool, bool, str]] = []  # (opens a phase, starts a sentence, text)
        for sentence in _split_sentences(caption):
            for index, (is_marker, text) in enumerate(split_at_phase_markers(sentence)):
                pieces.append((is_marker, index == 0, text))
        has_markers = any(is_marker for is_marker, _, _ in pieces)
        resolver = PronounResolver(self.lexicon)
        events: list[Event] = []
        phase = -1
        seen_marker = False
        last_subject: list[str] = []
        for is_marker, sentence_start, text in pieces:
            if sentence_start:
                last_subject = []
            if has_markers:
                if is_marker:
                    phase += 1
                    seen_marker = True
                elif not seen_marker:
                    continue  # the appearance introduction before the first phase marker
            elif sentence_start:
                phase += 1
            if not text or _APPEARANCE.search(text):
                continue
            first = text.split()[0].lower().strip(",.;")
            if not sentence_start and last_subject and first not in _SUBJECT_STARTS and first not in _FACE_NOUNS:
                text = f"{' '.join(last_subject)} {text}"  # "her lips part, then close" -> "her lips close"
            for clause in self._clauses(text):
                last_subject = _subject_words(clause.split()) or last_subject
                resolved = _resolve_subject(clause, resolver)
                if len(resolved.split()) < 2 or _NO_CHANGE.search(resolved) or self._is_fragment(resolved):
                    continue
                events.append(Event(text=resolved, phase=max(phase, 0), source=clause.strip()))
        return events

    def _is_fragment(self, text: str) -> bool:
        """A left-over piece of a split ("the person occasionally", "the person lowered"): at most two words after
        the subject, no face part, nothing the lexicon can parse."""
        rest = re.sub(rf"^{re.escape(self.lexicon.subject)}(?:'s)?\s*", "", text)
        if len(rest.split()) > 2:
            return False
        parsed = parse_event(text)
        return parsed.core is None and not parsed.parts

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
            is_continuation = is_continuation and not re.match(r"and (?:he|she|they|his|her|their|the) ", lowered)
            if clauses and (is_continuation or len(piece.split()) < 2):
                clauses[-1] = f"{clauses[-1]}, {piece}"
                continue
            clauses.append(piece)
        result: list[str] = []
        for clause in clauses:
            # A leading conjunction or subordinator is not part of the event ("as his head tilts ..." -> "his head
            # tilts ..."; "while opening and closing her lips" -> "opening and closing her lips").
            clause = re.sub(r"^(?:(?:and|or|but|while|whilst|when|also|meanwhile|simultaneously|as(?! if| though))\s+)+",
                            "", clause, flags=re.IGNORECASE)
            result.extend(_split_on_and(clause))
        return result

    def extract(self, captions: list[str]) -> list[list[Event]]:
        return [self.extract_one(caption) for caption in captions]


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
