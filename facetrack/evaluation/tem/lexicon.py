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
    intensity: str = "medium"  # "low" / "medium" / "high" (reported, never used by the relation rules)
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

    @property
    def core(self) -> Facet | None:
        return self.facets[0] if self.facets else None


class Lexicon:
    """The compiled lexicon. `Lexicon.load()` compiles `tem_lexicon_data.LEXICON` once per process."""

    def __init__(self, data: dict):
        self.data = data
        self.subject: str = data["subject"]
        irregular = data["irregular_forms"]
        self.phrases = [(re.compile(rf"\b{pattern}\b"), replacement) for pattern, replacement in data["phrases"]]
        self.negation_phrases = [(re.compile(rf"\b{re.escape(k)}"), v) for k, v in data["negation_phrases"].items()]
        self.negation_words = set(data["negation_words"])
        self.cessation_words = {f for w in data["cessation_words"] for f in inflections(w, irregular)}
        self.intensity = {f: level for level, words in data["intensity_words"].items() for w in words for f in {w}}
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
        text = re.sub(rf"\b{re.escape(self.subject)}'s\b|\b{re.escape(self.subject)}\b", " ", text)
        text = re.sub(r"\s+", " ", text)
        for pattern, replacement in self.phrases:
            text = re.sub(r"\s+", " ", pattern.sub(f" {replacement} " if replacement else " ", text))
        return re.findall(r"[a-z]+|,", text)

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
        previous_part: str | None = None
        carry_negation = False
        for clause in clauses:
            if not clause:
                continue
            found, previous_part, carry_negation = self._parse_clause(clause, previous_part, carry_negation)
            facets.extend(found)
            named_parts |= {self.part_of[t] for t in clause if t in self.part_of}
        return ParsedEvent(tuple(facets), negated_any, frozenset(named_parts))

    def _parse_clause(self, clause: list[str], previous_part: str | None, negated_before: bool):
        parts = [(k, self.part_of[t]) for k, t in enumerate(clause)
                 if t in self.part_of and (t not in self.action_of or t in self.part_or_action)]
        sides = {k: clause[k - 1] for k, _ in parts if k > 0 and clause[k - 1] in self.side_words}
        actions = [k for k, t in enumerate(clause) if t in self.action_of and t not in self.cessation_words]
        emotions = [k for k, t in enumerate(clause) if t in self.emotion_of]
        ceased = any(t in self.cessation_words for t in clause)
        intensity = next((self.intensity[t] for t in clause if t in self.intensity), "medium")
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
            side = sides.get(part_index) if part_index is not None else None
            facets.append((k, Facet(unit, directions, side, intensity, negated, ceased, self.lemma_of.get(word, word))))
            previous_part = part
        for e in emotions:
            negated = negated_before or any(t in self.negation_words for t in clause[:e])
            facets.append((e, Facet(f"emotion.{self.emotion_of[clause[e]]}", frozenset(), None, intensity, negated,
                                    ceased, clause[e])))
        if not facets and any(part in ("gaze", "eyes") for _, part in parts):
            # "the person's eyes forward": eyes or a gaze with a direction and no verb look that way.
            directions = frozenset(self.direction_of[t] for t in clause if t in self.direction_of) - {"wide"}
            if directions:
                facets.append((parts[0][0], Facet("gaze.look", directions, None, intensity, negated_before, ceased, "look")))
        if parts:
            previous_part = parts[-1][1]
        carry = bool(clause) and clause[-1] in self.negation_words
        merged: list[Facet] = []
        for _, facet in sorted(facets, key=lambda item: item[0]):
            last = merged[-1] if merged else None
            if last and last.unit == facet.unit and last.negated == facet.negated and last.ceased == facet.ceased:
                # "the person's gaze shifts downward": one action told by two words
                merged[-1] = Facet(last.unit, last.directions | facet.directions, last.side or facet.side,
                                   last.intensity, last.negated, last.ceased, last.word)
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
