"""TEM's facial-event representation: an event text -> facets (face part, action, direction / side, intensity,
negation), read from the data module `lexicon_data.py`, and the rules that relate two parsed events.

An event's *facets* are the facial actions it states, in the order it states them; the first is its *core*
("the person smiles, revealing the person's upper teeth" -> core mouth.smile, then teeth.show). A *unit* names a
face part and an action ("brows.furrow", "head.raise", "gaze.look"); synonyms, inflections and phrasings map to one
unit ("knits the person's brow", "brows furrow", "frowns" -> brows.furrow). README.md ("Lexicon") specifies the
parse step by step; this file implements it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from facetrack.evaluation.tem.lexicon_data import LEXICON

_SPACES = re.compile(r"\s+")
_TOKENS = re.compile(r"[a-z]+|,")


def inflections(word: str, irregular: dict[str, list[str]] | None = None) -> set[str]:
    """The forms a base word is recognised in: w, w+s, w+es, w+ed, w+ing; for a final e: w+d, w-e+ing; for a final
    consonant+y: w-y+ies, w-y+ied; for a final consonant-vowel-consonant: the doubled consonant + ed / ing; plus
    the irregular forms listed in the lexicon."""
    forms = {word, word + "s", word + "es", word + "ed", word + "ing"}
    if word.endswith("e"):
        forms |= {word + "d", word[:-1] + "ing"}
    if re.search(r"[^aeiou]y$", word):
        forms |= {word[:-1] + "ies", word[:-1] + "ied"}
    if re.search(r"[^aeiou][aeiou][bdgklmnprt]$", word):
        forms |= {word + word[-1] + "ed", word + word[-1] + "ing"}
    forms |= set((irregular or {}).get(word, []))
    return forms


@dataclass(frozen=True)
class Facet:
    unit: str  # "part.action", e.g. "head.raise"; emotions are "emotion.<name>"
    directions: frozenset = frozenset()  # e.g. {"left"}, {"up", "right"}
    side: str | None = None  # "left" / "right" / "one" / "both" for a part named with a side ("the right eyebrow")
    intensity: str | None = None  # "low" / "medium" / "high", None when the caption gives no degree
    negated: bool = False  # "does not turn", "no smile"
    ceased: bool = False  # "stops speaking", "the smile fades"
    word: str = ""  # the action word as written (antonym rules read it)

    @property
    def part(self) -> str:
        return self.unit.split(".", 1)[0]

    def to_dict(self) -> dict:
        return {"unit": self.unit, "directions": sorted(self.directions), "side": self.side,
                "intensity": self.intensity, "negated": self.negated, "ceased": self.ceased}


@dataclass(frozen=True)
class ParsedEvent:
    facets: tuple[Facet, ...] = ()
    negated: bool = False  # any negation word at all: an unparsed negated event is never entailed
    parts: frozenset = field(default_factory=frozenset)  # face parts named, parsed or not
    non_face: bool = False  # names something that is not the face (camera, hair ...): see `non_face_nouns`

    @property
    def core(self) -> Facet | None:
        return self.facets[0] if self.facets else None


class Lexicon:
    """The compiled lexicon. `Lexicon.load()` compiles `tem_lexicon_data.LEXICON` once per process."""

    def __init__(self, data: dict):
        self.data = data
        self.subject: str = data["subject"]
        irregular = data["irregular_forms"]
        self.phrases = [(re.compile(rf"\b{pattern}\b"), f" {replacement} " if replacement else " ")
                        for pattern, replacement in data["phrases"]]
        self._subject_pattern = re.compile(rf"\b{re.escape(self.subject)}'s\b|\b{re.escape(self.subject)}\b")
        self.negation_phrases = [(re.compile(rf"\b{re.escape(k)}"), v) for k, v in data["negation_phrases"].items()]
        self.negation_words = set(data["negation_words"])
        self.cessation_words = {f for w in data["cessation_words"] for f in inflections(w, irregular)}
        self.cessation_after = {f for w in data["cessation_after"] for f in inflections(w, irregular)}
        self.intensity = {w: level for level, words in data["intensity_words"].items() for w in words}
        self.intensity_levels: dict[str, int] = data["intensity_levels"]
        self.action_intensity = {f: level for w, level in data["action_intensity"].items()
                                 for f in inflections(w, irregular)}
        self.action_sides = {f: side for w, side in data["action_sides"].items() for f in inflections(w, irregular)}
        self.fixation_words = set(data["fixation_words"])
        self.non_face = {form for w in data["non_face_nouns"] for form in (w, w + "s", w + "es")}
        self.weights: dict[str, float] = data["match_weights"]
        self.informativeness: dict[str, float] = data.get("informativeness", {})
        self.part_of: dict[str, str] = {}
        for part, words in data["parts"].items():
            for word in words:
                for form in {word, word + "s", word + "es"}:
                    self.part_of.setdefault(form, part)
        self.action_of: dict[str, str] = {}
        for action, words in data["actions"].items():
            for word in words:
                for form in inflections(word, irregular):
                    self.action_of.setdefault(form, action)
        self.lemma_of = {form: word for words in data["actions"].values() for word in words
                         for form in inflections(word, irregular)}
        self.implied = {form: part for word, part in data["implied_parts"].items() for form in inflections(word, irregular)}
        self.units: dict[str, dict[str, str]] = data["units"]
        self.direction_rules: dict[str, str] = data["direction_rules"]
        self.direction_of = {w: name for name, words in data["directions"].items() for w in words}
        self.opposite_directions = {frozenset(pair) for pair in data["opposite_directions"]}
        self.opposite_units = {frozenset(pair) for pair in data["opposite_units"]}
        self.antonyms = {frozenset(pair) for pair in data["antonym_words"]}
        self.emotion_of = {w: name for name, words in data["emotions"].items() for w in words}
        self.emotion_verbs = {f for w in data["emotion_verbs"] for f in inflections(w, irregular)}
        self.clause_breaks = set(data["clause_breaks"])
        self.side_words = set(data["side_words"])
        self.directional_units = set(data["directional_units"])
        self.part_or_action = set(data["part_or_action"])
        self.noun_actions = {w + "s" for w in data["noun_actions"]} | set(data["noun_actions"])

    @classmethod
    @lru_cache(maxsize=1)
    def load(cls) -> "Lexicon":
        return cls(LEXICON)

    # ------------------------------------------------------------------------------------------------ parsing
    def normalise(self, text: str) -> list[str]:
        """Lower case, the subject removed, phrases rewritten (README 'Lexicon'), split into word tokens."""
        text = text.lower().replace("\u2019", "'")
        for pattern, replacement in self.negation_phrases:
            text = pattern.sub(replacement, text)
        text = self._subject_pattern.sub(" ", text)
        text = _SPACES.sub(" ", text)
        for pattern, replacement in self.phrases:
            text, count = pattern.subn(replacement, text)
            if count:
                text = _SPACES.sub(" ", text)
        return _TOKENS.findall(text)

    def parse(self, text: str) -> ParsedEvent:
        tokens = self.normalise(text)
        # Sub-clauses: split at commas and at clause words ("as", "while", "revealing" ...).
        clauses: list[list[str]] = [[]]
        for token in tokens:
            if token == ",":
                clauses.append([])
            elif token in self.clause_breaks:
                clauses.append([token])  # kept: "revealing", "showing" are actions of the new clause
            else:
                clauses[-1].append(token)
        facets: list[Facet] = []
        named_parts: set[str] = set()
        negated_any = any(token in self.negation_words for token in tokens)
        non_face = any(token in self.non_face for token in tokens)
        previous_part: str | None = None
        carry_negation = False
        for clause in clauses:
            if not clause:
                continue
            found, previous_part, carry_negation = self._parse_clause(clause, previous_part, carry_negation)
            facets.extend(found)
            named_parts |= {self.part_of[t] for t in clause if t in self.part_of}
        return ParsedEvent(tuple(facets), negated_any, frozenset(named_parts), non_face)

    def _parse_clause(self, clause: list[str], previous_part: str | None, negated_before: bool):
        parts = [(k, self.part_of[t]) for k, t in enumerate(clause)
                 if t in self.part_of and (t not in self.action_of or t in self.part_or_action)]
        # Things that are not the face ("the camera moves", "her hair sways"): an action right after one is theirs.
        non_face = [k for k, t in enumerate(clause) if t in self.non_face and t not in self.part_of]
        sides = {k: clause[k - 1] for k, _ in parts if k > 0 and clause[k - 1] in self.side_words}
        actions = [k for k, t in enumerate(clause) if t in self.action_of and t not in self.cessation_words]
        # "shakes his head from side to side": after another action, "side to side" is its direction, not a sway
        actions = [k for n, k in enumerate(actions) if not (n > 0 and clause[k] == "sidetoside")]
        emotions = [k for k, t in enumerate(clause) if t in self.emotion_of]
        # Cessation: "stops speaking" / "closes the mouth to stop speaking" end the action after the word; "the
        # smile fades" / "the wrinkles disappear" the action before it.
        stops = [k for k, t in enumerate(clause) if t in self.cessation_words]

        def is_ceased(k: int) -> bool:
            return any((s < k) != (clause[s] in self.cessation_after) for s in stops)

        # Degree: each degree word ("slightly"; "a bit" was rewritten to it) belongs to the action or emotion word
        # nearest to it in the sub-clause (the later one on a tie); an action without one has the degree its word
        # carries (grin: high, smirk: low), else none (None: unspecified).
        anchors = sorted(actions + emotions)
        degree_of: dict[int, str] = {}
        for t, token in enumerate(clause):
            if token in self.intensity and anchors:
                nearest = min(anchors, key=lambda k: (abs(k - t), -k))
                degree_of.setdefault(nearest, self.intensity[token])
        degree = next((self.intensity[t] for t in clause if t in self.intensity), None)  # for verb-less gazes
        facets: list[tuple[int, Facet]] = []
        for index, k in enumerate(actions):
            word = clause[k]
            # "gaze" is the part, not the verb, when another action follows ("the person's gaze shifts down").
            if word in self.part_or_action and any(a > k for a in actions):
                continue
            # An emotion word right after "looks / appears / becomes" is a state, not a gaze movement.
            if word in self.emotion_verbs and any(0 < e - k <= 3 for e in emotions):
                continue
            before = next((p for p, _ in reversed(parts) if p < k), None)
            after = next((p for p, _ in parts if p > k), None)
            if any(n < k and (before is None or n > before) for n in non_face):
                continue  # "the camera moves closer", "her hair sways": not the face's action
            # "lines form on the person's forehead": a noun action names its part after it when it can.
            noun_action = word in self.noun_actions and word != self.lemma_of.get(word, word)
            part_index = (after if after is not None else before) if noun_action else (before if before is not None else after)
            part = dict(parts).get(part_index) if part_index is not None else None
            action = self.action_of[word]
            if part is None or action not in self.units.get(part, {}):
                implied = self.implied.get(word)
                part = implied if implied else (part or previous_part)
            if part is None or action not in self.units.get(part, {}):
                continue
            end = actions[index + 1] if index + 1 < len(actions) else len(clause)
            side_positions = {p - 1 for p in sides}
            directions = frozenset(self.direction_of[clause[j]] for j in range(k + 1, end)
                                   if clause[j] in self.direction_of and j not in side_positions)
            negated = negated_before or any(t in self.negation_words for t in clause[:k])
            unit, directions = self._unit(part, action, directions)
            lemma = self.lemma_of.get(word, word)
            if unit == "gaze.look" and not directions and lemma in self.fixation_words:
                directions = frozenset({"forward"})  # "stares", "keeps a focused gaze": a fixed gaze ahead, no shift
            side = sides.get(part_index) if part_index is not None else None
            side = side or self.action_sides.get(word)
            intensity = degree_of.get(k) or self.action_intensity.get(word)
            facets.append((k, Facet(unit, directions, side, intensity, negated, is_ceased(k), lemma)))
            previous_part = part
        for e in emotions:
            negated = negated_before or any(t in self.negation_words for t in clause[:e])
            facets.append((e, Facet(f"emotion.{self.emotion_of[clause[e]]}", frozenset(), None, degree_of.get(e),
                                    negated, is_ceased(e), clause[e])))
        if not facets and any(part == "eyes" for _, part in parts) and any(t in ("wide", "wider") for t in clause):
            # "the person's eyes are wide": wide eyes, no verb
            k = next(k for k, part in parts if part == "eyes")
            facets.append((k, Facet("eyes.widen", frozenset(), None, degree_of.get(k) or degree, negated_before,
                                    is_ceased(k), "widen")))
        if not facets and any(part in ("gaze", "eyes") for _, part in parts):
            # "the person's eyes forward": eyes or a gaze with a direction and no verb look that way.
            directions = frozenset(self.direction_of[t] for t in clause if t in self.direction_of) - {"wide"}
            if directions:
                facets.append((parts[0][0], Facet("gaze.look", directions, None, degree, negated_before,
                                                  is_ceased(parts[0][0]), "look")))
        if parts:
            previous_part = parts[-1][1]
        carry = bool(clause) and clause[-1] in self.negation_words
        merged: list[Facet] = []
        for _, facet in sorted(facets, key=lambda item: item[0]):
            last = merged[-1] if merged else None
            if last and last.unit == facet.unit and last.negated == facet.negated and last.ceased == facet.ceased:
                # "the person's gaze shifts downward": one action told by two words
                merged[-1] = Facet(last.unit, last.directions | facet.directions, last.side or facet.side,
                                   last.intensity or facet.intensity, last.negated, last.ceased, last.word)
            else:
                merged.append(facet)
        return merged, previous_part, carry

    def _unit(self, part: str, action: str, directions: frozenset) -> tuple[str, frozenset]:
        """(unit, remaining directions): the part's unit for the action, then the direction rules ("head.tilt" +
        up -> "head.raise"). A unit written "x.y+dir" carries that direction."""
        unit = self.units[part][action]
        if "+" in unit:
            unit, extra = unit.split("+", 1)
            directions = directions | {extra}
        for direction in sorted(directions):
            rule = self.direction_rules.get(f"{unit}+{direction}")
            if rule:
                unit = rule
                directions = directions - {direction}
                break
        if unit not in self.directional_units:  # "upper teeth" says which teeth, not a movement
            return unit, frozenset()
        return unit, frozenset(d for d in directions if d != "wide")

    # ------------------------------------------------------------------------------------------------ relations
    def directions_conflict(self, first: frozenset, second: frozenset) -> bool:
        """An atom of one set opposite to an atom of the other that the first does not also hold ("from left to
        right" does not conflict with itself or with "to the right")."""
        only_first, only_second = first - second, second - first
        return any(frozenset((a, b)) in self.opposite_directions for a in only_first for b in only_second)

    def same_action(self, a: Facet, b: Facet) -> bool:
        """One facet states the other's action: same unit, no opposite directions, no different sides, the same
        negation and cessation. A missing direction or side is compatible with any ("turns the head" ~ "turns the
        head to the left")."""
        if a.unit != b.unit or a.negated != b.negated or a.ceased != b.ceased:
            return False
        if a.side and b.side and a.side != b.side and "both" not in (a.side, b.side):
            return False
        if a.directions and b.directions and not (a.directions & b.directions):
            return False
        return not self.directions_conflict(a.directions, b.directions)

    def match_weight(self, a: Facet, b: Facet) -> float:
        """How fully facet `a` states facet `b`'s action, for two facets that state the same action (`same_action`):
        the degree weight times the direction weight (README "Degree and direction").

        degree: 1 when both give the same degree or neither gives one; `degree_unspecified` when only one does
        ("smiles" vs "smiles faintly"); `degree_one_level` / `degree_two_levels` when they differ by one level
        (low / medium / high) or two ("smiles faintly" vs "grins").
        direction: for a movement whose direction is its content (`directional_units`), `direction_unspecified`
        when only one of the two gives a direction ("turns the head" vs "turns the head to the left")."""
        weights = self.weights
        if a.intensity == b.intensity:
            degree = 1.0
        elif a.intensity is None or b.intensity is None:
            degree = weights["degree_unspecified"]
        elif abs(self.intensity_levels[a.intensity] - self.intensity_levels[b.intensity]) == 1:
            degree = weights["degree_one_level"]
        else:
            degree = weights["degree_two_levels"]
        direction = 1.0
        if a.unit in self.directional_units and bool(a.directions) != bool(b.directions):
            direction = weights["direction_unspecified"]
        return degree * direction

    def item_values(self, parsed: "ParsedEvent") -> list[float]:
        """The informativeness of each of an event's items (`informativeness.py` makes the table): 1 for a key not in
        the table."""
        return [self.informativeness.get(key, 1.0) for key in event_keys(parsed)]

    def opposed(self, a: Facet, b: Facet) -> bool:
        """Contradiction: opposite units of one part (raise / lower ...), the same action in opposite directions,
        the same action negated in one of them only, or antonym words (smile / frown)."""
        if a.ceased != b.ceased:
            return False
        if a.negated == b.negated:
            if frozenset((a.unit, b.unit)) in self.opposite_units or frozenset((a.word, b.word)) in self.antonyms:
                return True
            return a.unit == b.unit and self.directions_conflict(a.directions, b.directions)
        return a.unit == b.unit and not self.directions_conflict(a.directions, b.directions)


@lru_cache(maxsize=65536)
def parse_event(text: str) -> ParsedEvent:
    """The facets of one event text (cached: references are parsed again and again)."""
    return Lexicon.load().parse(text)


NO_FACET = "<none>"  # the key of an event outside the lexicon (one item, no facet)


def facet_key(facet) -> str:
    """unit, "/" + sorted directions joined by "+" when it has any, then " ceased" / " not"."""
    key = facet.unit + ("/" + "+".join(sorted(facet.directions)) if facet.directions else "")
    return key + (" ceased" if facet.ceased else "") + (" not" if facet.negated else "")


def event_keys(parsed) -> list[str]:
    """The keys of one parsed event's items: one per facet, or NO_FACET."""
    return [facet_key(facet) for facet in parsed.facets] or [NO_FACET]
