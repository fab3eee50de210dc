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
    phase: int  # 0-based order in time of the phase (time segment) the caption puts this event in
    source: str = ""  # the caption text it came from, for the matched-event table
    # The top-level phase (as a phase number) this event's phase belongs to: a phase opened inside a sentence by
    # "then" / "after that" ... is a step within the phase of its sentence ("At the beginning, A, then B": B is
    # still at the beginning). None: every phase is top-level (the LLM extractor).
    segment: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _phrase_alternation(phrases: list[str]) -> str:
    """Longest first, so "in the middle to later part" wins over "in the middle"."""
    return "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in sorted(phrases, key=len, reverse=True))


@lru_cache(maxsize=1)
def phase_marker_patterns() -> tuple[re.Pattern, re.Pattern]:
    """(marker at a clause start, where a clause may start inside a sentence), built from the lexicon's lists.

    A phase marker ("at the beginning", "in the later part" ...) opens a phase when followed by one of the tails
    ("of the video" ...) and/or a comma, or by a plain space and a subject word (he, she, his, the ...); a phase adverb ("then", "finally", "before that" ...) also when followed by
    a plain space, and also with a tail ("later in the video"). Inside a sentence a marker must follow ", " / "; " /
    ", and " / " and " (or, for "then", any space). The matched phrase is the group "phrase"."""
    data = Lexicon.load().data
    markers = _phrase_alternation(data["phase_markers"])
    adverbs = _phrase_alternation(data["phase_adverbs"])
    both = _phrase_alternation(data["phase_markers"] + data["phase_adverbs"])
    tails = _phrase_alternation(data["phase_marker_tails"])
    subject = r"(?:he|she|they|his|her|their|the|its?)\b"
    marker = (rf"(?:(?P<tailed>{both})\s+(?:{tails})\b\s*,?|(?P<marker>{markers})(?:\s*,|\s+(?={subject}))"
              rf"|(?P<adverb>{adverbs})\b\s*,?)\s*")
    at_start = re.compile(rf"^{marker}", re.IGNORECASE)
    lookahead = marker.replace("?P<tailed>", "?:").replace("?P<marker>", "?:").replace("?P<adverb>", "?:")
    inside = re.compile(rf"(?:[,;]\s*(?:and\s+)?|\s+and\s+|\s+(?=then\b))(?={lookahead}\S)", re.IGNORECASE)
    return at_start, inside


@lru_cache(maxsize=1)
def phase_anchors() -> dict[str, float | str]:
    """Marker phrase -> its place in time: a position in [0, 1] ("at the beginning" 0, "in the middle" 0.5, "towards
    the end" 1 ...), or "after" / "before" (relative to the phase told just before: "then", "before that")."""
    data = Lexicon.load().data
    positions = data["phase_anchor_positions"]
    return {phrase: positions.get(kind, kind) for kind, phrases in data["phase_anchors"].items() for phrase in phrases}


def _normalise_marker(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip(" ,").lower())


def split_at_phase_markers(sentence: str) -> list[tuple[tuple[str, ...], str]]:
    """[(the phase markers opening the piece, text without them)] for one sentence; () for a piece that opens no
    phase. Several markers in a row ("Finally, at the end of the video, ...", "Before that, in the middle, ...") all
    belong to the piece that follows them."""
    at_start, inside = phase_marker_patterns()
    pieces: list[tuple[tuple[str, ...], str]] = []
    separators = list(inside.finditer(sentence))
    starts = [0] + [m.end() for m in separators]
    bounds = [m.start() for m in separators] + [len(sentence)]
    pending: tuple[str, ...] = ()
    for begin, end in zip(starts, bounds):
        piece = sentence[begin:end]
        markers: list[str] = []
        while True:
            match = at_start.match(piece)
            if not match:
                break
            markers.append(_normalise_marker(match.group("tailed") or match.group("marker") or match.group("adverb")))
            piece = piece[match.end():]
        text = piece.strip(" ,;")
        markers_here = pending + tuple(markers)
        if markers and not text:
            pending = markers_here  # a marker with nothing after it: it belongs to the next piece
            continue
        pending = ()
        if markers_here or text:
            pieces.append((markers_here, text))
    if pending:
        pieces.append((pending, ""))
    return pieces


def phase_anchor(markers: tuple[str, ...]) -> float | str:
    """Where a phase opened by `markers` lies: the position of its last absolute marker if it has one ("Before that,
    in the middle" -> 0.5), else "before" if any marker says so, else "after"."""
    anchors = phase_anchors()
    absolute = [anchors[m] for m in markers if isinstance(anchors.get(m), float)]
    if absolute:
        return absolute[-1]
    return "before" if any(anchors.get(m) == "before" for m in markers) else "after"


class PhaseTimeline:
    """Phases in the order the caption *tells* them -> their order in *time* (README "Phases in time order").

    Each phase has an effective anchor in [0, 1]. A phase with an absolute marker goes before the first phase whose
    anchor is later than its own, or equal but not from a marker with a position (else last); "after" goes right after
    the phase told just before it (and takes its anchor), "before" right before it; the first phase without an
    absolute marker has anchor 0, not from a marker with a position. A caption told in narrative order ("Towards the end ... Before that, in the middle ...") gets its time order
    back; a caption told in time order keeps it."""

    def __init__(self):
        self.order: list[int] = []  # phase ids (in telling order) sorted by time
        self.anchor: list[float] = []
        self.previous: int | None = None
        self.parent: list[int] = []  # each phase's top-level phase (itself for a top-level phase)
        self.anchored: list[bool] = []  # whether the phase's anchor comes from a marker with a position

    def open(self, where: float | str, top_level: bool = True) -> int:
        """A new phase at `where` (`phase_anchor`); a step (`top_level=False`) belongs to the current top-level
        phase."""
        phase = len(self.anchor)
        self.parent.append(phase if top_level or self.previous is None else self.parent[self.previous])
        if isinstance(where, float):
            self.anchor.append(where)
            self.anchored.append(True)
            # after the phases placed at most this early, before the later ones and before phases that only follow
            # a caption start without a position ("Later, A. To start with, B.": B comes first)
            index = next((k for k, other in enumerate(self.order) if self.anchor[other] > where
                          or (self.anchor[other] == where and not self.anchored[other])), len(self.order))
        elif self.previous is None:
            self.anchor.append(0.0)
            self.anchored.append(False)
            index = len(self.order) if where == "after" else 0
        else:
            self.anchor.append(self.anchor[self.previous])
            self.anchored.append(self.anchored[self.previous])
            index = self.order.index(self.previous) + (1 if where == "after" else 0)
        self.order.insert(index, phase)
        self.previous = phase
        return phase

    def rank(self) -> dict[int, int]:
        """Phase id -> its 0-based position in time."""
        return {phase: index for index, phase in enumerate(self.order)}

    def segment(self) -> dict[int, int]:
        """Phase id -> the phase number (`rank`) of its top-level phase."""
        rank = self.rank()
        return {phase: rank[self.parent[phase]] for phase in self.order}


# Appearance, never an event: the video introducing its subject, age.
_APPEARANCE = re.compile(
    r"^(?:this|the) (?:video|clip)\b|^in this (?:video|clip)\b"
    r"|\byears? old\b|\bin (?:his|her|their) (?:\d0s|twenties|thirties|forties|fifties|sixties)\b",
    re.IGNORECASE,
)
# Static appearance ("he has short hair", "she is wearing glasses", "his skin is fair"): appearance unless the clause
# states a facial action the lexicon parses ("he has slight wrinkles on his forehead" is a state of the face).
_STATIC_APPEARANCE = re.compile(
    r"^(?:he|she|they|the (?:man|woman|person|boy|girl))\s+(?:has|have|is wearing|wears|is dressed|appears to be (?:around|about|in)|is (?:around|about) \d)"
    r"|^(?:his|her|their) (?:hair|skin|complexion|clothes|clothing|shirt|glasses|beard)\b",
    re.IGNORECASE,
)
# Statements that nothing happens are not events ...
_NO_CHANGE = re.compile(
    r"\bno (?:obvious|significant|noticeable|apparent|major|clear|evident|visible|further|much)?\s*(?:change|changes|movement)\b"
    r"|\bremains? (?:unchanged|the same)\b|\bstays? the same\b",
    re.IGNORECASE,
)
# ... except what follows an exception word ("no obvious change except that he blinks": "he blinks" is an event).
_EXCEPTION = re.compile(
    r"\b(?:except(?:\s+(?:that|for))?|apart from|other than|aside from|besides|save for|but|only|though|although|yet)\b\s*",
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
    text = re.sub(r"\b(?:every )?now and then\b", "occasionally", text, flags=re.IGNORECASE)  # frequency, not time
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


_DETERMINERS = {"his", "her", "their", "its", "the", "both", "one"}


def _nearest_part_subject(words: list[str]) -> list[str]:
    """The face part named last before the last verb-like word, with its determiner ("starting to speak with his
    mouth opening" -> "his mouth"); else `_subject_words`."""
    clean = [w.lower().strip(",.;") for w in words]
    verbs = [k for k, w in enumerate(clean) if _is_verb_like(w)]
    if verbs:
        nouns = [k for k in range(verbs[-1]) if clean[k] in _FACE_NOUNS]
        if nouns:
            start = nouns[-1]
            while start > 0 and (clean[start - 1] in _DETERMINERS or clean[start - 1] in _FACE_NOUNS
                                 or clean[start - 1] in ("upper", "lower", "left", "right")):
                start -= 1
            if start < nouns[-1] or clean[start] in _DETERMINERS:
                return words[start:nouns[-1] + 1]
    return _subject_words(words)


def _shares_object(verb: str, following: list[str]) -> bool:
    """A verb without a part of its own ("opens", not "blinks" or "frowns") whose action the first face part in
    `following` can do."""
    lexicon = Lexicon.load()
    action = lexicon.action_of.get(verb)
    if action is None or verb in lexicon.implied:
        return False
    part = next((lexicon.part_of[w] for w in following if w in lexicon.part_of), None)
    return part is not None and action in lexicon.units.get(part, {})


def _split_on_and(clause: str) -> list[str]:
    """Split on "and"/"while"/"but" only where a new clause follows ("blinks and smiles", not "eyes and mouth", not
    "to the right and downwards", not "opens and closes her mouth", whose verbs share the object)."""
    parts: list[str] = []
    words = clause.split()
    current: list[str] = []
    directions = Lexicon.load().direction_of
    for index, word in enumerate(words):
        next_word = words[index + 1].lower().strip(",.;") if index + 1 < len(words) else ""
        if word.lower() in ("and", "while", "but", "whilst") and current and next_word:
            word_after = words[index + 2].lower().strip(",.;") if index + 2 < len(words) else ""
            starts_clause = (
                next_word in _SUBJECT_STARTS
                or (next_word.endswith(("s", "ed", "ing")) and next_word not in _FACE_NOUNS
                    and next_word not in directions)
                # "and slightly opens ..." is a clause; "and slightly downwards" is not
                or (next_word.endswith("ly") and word_after.endswith(("s", "ed")) and word_after not in _FACE_NOUNS)
            )
            # "she opens and closes her mouth": one verb before "and" that names no part of its own and fits the
            # object of the next verb: the two verbs share it, the clause is kept whole
            own = [w.lower().strip(",.;") for w in current if w.lower().strip(",.;") not in _SUBJECT_STARTS]
            shared_object = (len(own) == 1 and next_word not in _SUBJECT_STARTS and word_after in _SUBJECT_STARTS
                             and _shares_object(own[0], [w.lower().strip(",.;") for w in words[index + 2:index + 5]]))
            if starts_clause and len(current) >= 2 and not shared_object:
                parts.append(" ".join(current))
                # "his mouth opens and closes": the new clause shares the subject ("his mouth"), so it keeps it
                subject = _nearest_part_subject(current)
                current = subject if subject and next_word not in _SUBJECT_STARTS else []
                continue
        current.append(word)
    if current:
        parts.append(" ".join(current))
    return parts


def _without_no_change(clause: str) -> str:
    """The clause without its statements that nothing changes: each comma piece holding one is dropped, except what
    follows an exception word ("no obvious change except that he blinks" -> "he blinks"); the rest of the clause is
    kept ("his lips tremble slightly, with no significant change ..." -> "his lips tremble slightly")."""
    kept = []
    for piece in clause.split(", "):
        no_change = _NO_CHANGE.search(piece)
        if not no_change:
            kept.append(piece)
            continue
        exception = _EXCEPTION.search(piece, no_change.end())
        if exception and piece[exception.end():].strip():
            kept.append(piece[exception.end():])
    return ", ".join(kept).strip(" ,")


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
    """Offline, model-free event extraction for phase-structured facial-dynamics captions (README "Event extraction").

    1. Sentences, then phase markers inside them (the lexicon's lists): each marker opens a new phase, at a sentence
       start or after ", " / "; " / ", and " / " and "; "then" also after a plain space. Phases are numbered in time
       order (`PhaseTimeline`: each marker's anchor), a relative marker inside a sentence opens a step of the
       sentence's phase (`Event.segment`). Before a first marker that opens the timeline ("At the beginning") is the
       appearance introduction (dropped); other sentences before the first marker are phases of their own.
    2. Clauses: split on ";", ",", ":" and on "and"/"while"/"but" where a clause follows; continuations
       (", revealing some teeth", ", with lines between them") stay with their clause.
    3. Appearance dropped per clause (static appearance only when it states no facial action); "no change"
       statements dropped per comma piece, except what follows an exception word.
    4. Pronouns resolved (`PronounResolver`); subject-less clauses get the subject.
    5. Fragments under two words, and events about the camera, hair ... (no facet, a non-face noun), are dropped.
    """

    name = "rules"

    def __init__(self):
        self.lexicon = Lexicon.load()
        self._cache: dict[str, list[Event]] = {}

    def extract_one(self, caption: str) -> list[Event]:
        pieces: list[tuple[tuple[str, ...], bool, str]] = []  # (markers opening a phase, starts a sentence, text)
        for sentence in _split_sentences(caption):
            for index, (markers, text) in enumerate(split_at_phase_markers(sentence)):
                pieces.append((markers, index == 0, text))
        # A caption whose first phase marker places it at the start ("At the beginning", "Initially" ...) says where
        # its timeline begins: everything before that marker is the introduction (appearance) and is dropped.
        first_markers = next((markers for markers, _, _ in pieces if markers), ())
        introduction = bool(first_markers) and phase_anchor(first_markers) == 0.0
        timeline = PhaseTimeline()
        resolver = PronounResolver(self.lexicon)
        found: list[tuple[int, str, str]] = []  # (phase id, event text, source clause)
        phase: int | None = None
        seen_marker = False
        skip_sentence = False
        last_subject: list[str] = []
        for markers, sentence_start, text in pieces:
            if sentence_start:
                last_subject = []
                skip_sentence = False
            if markers:
                where = phase_anchor(markers)
                # a relative marker inside a sentence ("..., then ...") opens a step of the sentence's phase
                phase = timeline.open(where, top_level=sentence_start or isinstance(where, float))
                seen_marker = skip_sentence = False
            elif sentence_start and not seen_marker:
                # A sentence before any phase marker (every sentence of a caption without markers): the appearance
                # introduction when its first clause is appearance, else a phase of its own ("He blinks. Later ...").
                clauses = self._clauses(text) if text else []
                if introduction or not clauses or self._is_appearance(clauses[0], introduction=True):
                    skip_sentence = True
                    continue
                phase = timeline.open("after")
            elif skip_sentence or phase is None:
                continue
            if not text:
                continue
            first = text.split()[0].lower().strip(",.;")
            if not sentence_start and last_subject and first not in _SUBJECT_STARTS and first not in _FACE_NOUNS:
                text = f"{' '.join(last_subject)} {text}"  # "her lips part, then close" -> "her lips close"
            for clause in self._clauses(text):
                last_subject = _subject_words(clause.split()) or last_subject
                if self._is_appearance(clause):
                    continue
                clause = _without_no_change(clause)
                if not clause:
                    continue
                resolved = _resolve_subject(clause, resolver)
                if len(resolved.split()) < 2 or _NO_CHANGE.search(resolved) or self._is_fragment(resolved):
                    continue
                parsed = parse_event(resolved)
                if parsed.core is None and parsed.non_face and not parsed.parts:
                    continue  # "the camera moves closer", "her hair sways": not the face
                found.append((phase, resolved, clause.strip()))
            if markers:
                seen_marker = True
        rank, segment = timeline.rank(), timeline.segment()
        return [Event(text=text, phase=rank[phase_id], source=source, segment=segment[phase_id])
                for phase_id, text, source in found]

    def _is_appearance(self, clause: str, introduction: bool = False) -> bool:
        """Appearance, not an event: the video introducing its subject or an age, anywhere; static appearance ("he
        has short hair") when the lexicon finds no facial action in it, or always in the introduction."""
        text = clause.strip(" ,.;:!?\"'")
        if _APPEARANCE.search(text):
            return True
        if not _STATIC_APPEARANCE.search(text):
            return False
        return introduction or parse_event(text).core is None

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
            # Not phase markers either ("at the same time", "throughout the video": README), just removed.
            clause = re.sub(r"^(?:(?:and|or|but|while|whilst|when|also|meanwhile|simultaneously|as(?! if| though)"
                            r"|except(?: that| for)?|apart from|other than|aside from|besides|at the same time"
                            r"|at this (?:point|moment)|overall|throughout (?:the )?(?:entire |whole )?"
                            r"(?:video|clip|process|this))(?:\s+|$))+", "", clause, flags=re.IGNORECASE)
            if not clause:
                continue
            result.extend(_split_on_and(clause))
        return result

    def extract(self, captions: list[str]) -> list[list[Event]]:
        """Events of each caption; a caption seen recently by this extractor is not parsed again (events are
        immutable, and a benchmark scores each reference many times)."""
        events = []
        for caption in captions:
            found = self._cache.get(caption)
            if found is None:
                found = self.extract_one(caption)
                if len(self._cache) >= 8192:
                    self._cache.clear()
                self._cache[caption] = found
            events.append(list(found))
        return events


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
