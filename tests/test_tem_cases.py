"""TEM against a careful reader: the hand-written cases of tests/tem_cases.py (44 references, each with a paraphrase,
a negation, a reversal, a missing phase and another person's caption), the issue's examples, the unique alignment,
the lexicon parse, the conformance file and the relation accuracy on the labelled pairs. Default backends."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from tem_cases import CASES, variants

from facetrack.evaluation.tem import events as tem_events
from facetrack.evaluation.tem import lexicon as tem_lexicon
from facetrack.evaluation.tem import relations as tem_relations
from facetrack.evaluation.tem import scoring as tem_scoring
from facetrack.evaluation.tem.metric import load_tem_metric

TEM_DIR = Path(tem_events.__file__).resolve().parent
METRIC_CARD = Path(__file__).resolve().parents[1] / "evaluate_metric" / "tem" / "README.md"


@pytest.fixture(scope="module")
def tem():
    return load_tem_metric()



@pytest.fixture(scope="module")
def case_scores(tem):
    """{(case, variant): (per-sample scores, matched-event table)} for every case, in one compute call."""
    keys, predictions, references = [], [], []
    for index, (reference, _, _) in enumerate(CASES):
        for name, caption in {**variants(index), "self": reference}.items():
            keys.append((index, name))
            predictions.append(caption)
            references.append(reference)
    result = tem.compute(predictions=predictions, references=references, return_per_sample=True, return_events=True)
    return {key: (sample, events["table"]) for key, sample, events in zip(keys, result["per_sample"], result["events"])}


def test_there_are_at_least_40_cases():
    assert len(CASES) >= 40
    assert len({reference for reference, _, _ in CASES}) == len(CASES)


def test_paraphrase_beats_missing_phase_beats_other_person(case_scores):
    ordered = [case_scores[(k, "paraphrase")][0]["tem"] > case_scores[(k, "missing_phase")][0]["tem"]
               > case_scores[(k, "other_person")][0]["tem"] for k in range(len(CASES))]
    assert sum(ordered) / len(CASES) >= 0.90, [k for k, ok in enumerate(ordered) if not ok]


def test_negated_caption_scores_below_the_paraphrase(case_scores):
    below = [case_scores[(k, "negated")][0]["tem"] < case_scores[(k, "paraphrase")][0]["tem"] for k in range(len(CASES))]
    assert sum(below) / len(CASES) >= 0.95, [k for k, ok in enumerate(below) if not ok]


def test_explicit_negations_are_never_entailed(case_scores):
    entailed = [(k, row["prediction_event"], row["reference_event"]) for k in range(len(CASES))
                for row in case_scores[(k, "negated")][1] if row["relation"] == "entailment"]
    assert entailed == []


def test_a_negated_action_contradicts_the_same_action(tem):
    """Every negated event of the negated captions contradicts each reference event with the same unit."""
    extractor = tem_events.RuleEventExtractor()
    classifier = tem_relations.LexiconRelationClassifier()
    parse = tem_lexicon.parse_event
    checked = 0
    for index, (reference, _, negated) in enumerate(CASES):
        pred, ref = extractor.extract_one(negated), extractor.extract_one(reference)
        relations = classifier.classify([(pred, ref, negated, reference)])[0]
        for i, p in enumerate(pred):
            for j, r in enumerate(ref):
                core_p, core_r = parse(p.text).core, parse(r.text).core
                if (core_p and core_r and core_p.negated and core_p.unit == core_r.unit and not core_r.negated
                        and core_p.ceased == core_r.ceased):
                    assert relations.contradiction[i, j], (p.text, r.text)
                    checked += 1
    assert checked >= 200


def test_reversed_order_always_loses_temporal_score(case_scores):
    for k in range(len(CASES)):
        assert case_scores[(k, "self")][0]["temporal"] == 1.0
        assert case_scores[(k, "reversed")][0]["temporal"] < 1.0, k
        assert case_scores[(k, "reversed")][0]["content_f1"] == 1.0, k  # same events, other order


# ------------------------------------------------------------------------------------------------ the examples
@pytest.mark.parametrize(("first", "second"), [
    ("he tilts his head slightly upward", "he tips his head up a little"),
    ("she narrows her eyes", "her eyes squint"),
    ("he knits his brow", "his brow furrows"),
])
def test_paraphrased_actions_are_entailed(tem, first, second):
    result = tem.compute(predictions=[first], references=[second], return_events=True)
    assert result["tem"] == 1.0
    assert result["events"][0]["table"][0]["relation"] == "entailment"


def test_explicit_negation_contradicts(tem):
    result = tem.compute(predictions=["His head does not turn to the right."], references=["His head turns to the right."],
                         return_events=True)
    assert result["tem"] == 0.0
    assert result["events"][0]["table"][0]["relation"] == "contradiction"


def test_ties_are_broken_by_phase_position_not_by_listing_order(tem):
    reference = "At the beginning, he blinks. In the middle, he smiles. Towards the end, he blinks."
    prediction = "At the beginning, he smiles. Towards the end, he blinks."
    result = tem.compute(predictions=[prediction], references=[reference], return_per_sample=True)["per_sample"][0]
    assert result["temporal"] == 1.0 and result["num_aligned"] == 2


def test_scores_do_not_depend_on_the_order_events_are_listed_in(tem):
    """Shuffling (and reversing) the reference's event list, each event keeping its phase, changes no score."""
    events = tem_events
    relations = tem_relations.LexiconRelationClassifier()
    scoring = tem_scoring
    extractor = events.RuleEventExtractor()
    rng = random.Random(0)
    changed = 0
    for index in range(len(CASES)):
        reference = extractor.extract_one(CASES[index][0])
        for name in ("missing_phase", "reversed", "paraphrase"):
            prediction = extractor.extract_one(variants(index)[name])
            base = scoring.score_sample(prediction, reference, relations.classify([(prediction, reference, "", "")])[0])
            for order in (reference[::-1], rng.sample(reference, len(reference))):
                other = scoring.score_sample(prediction, order, relations.classify([(prediction, order, "", "")])[0])
                changed += base.scores() != other.scores()
    assert changed == 0


# ------------------------------------------------------------------------------------------------ lexicon
@pytest.mark.parametrize(("text", "unit", "directions", "negated"), [
    ("the person tilts the person's head slightly upward", "head.raise", [], False),
    ("the person's head does not turn to the right", "head.turn", ["right"], True),
    ("the corners of the person's mouth turn slightly downwards", "mouth.downturn", [], False),
    ("creases appear between the person's eyebrows", "brows.furrow", [], False),
    ("the person's gaze shifts downward", "gaze.look", ["down"], False),
    ("the person looks surprised", "emotion.surprised", [], False),
    ("the person's eyelids droop slightly", "eyes.narrow", [], False),
    ("the person stops speaking", "mouth.speak", [], False),
])
def test_lexicon_parses_events_into_facets(tem, text, unit, directions, negated):
    core = tem_lexicon.parse_event(text).core
    assert (core.unit, sorted(core.directions), core.negated) == (unit, directions, negated)


def test_lexicon_exports_as_json(tmp_path):
    # Another implementation reads the lexicon as JSON: the data module prints exactly its data.
    exported = subprocess.run([sys.executable, str(TEM_DIR / "lexicon_data.py")], capture_output=True,
                              text=True, check=True).stdout
    namespace: dict = {}
    exec((TEM_DIR / "lexicon_data.py").read_text(encoding="utf-8"), namespace)
    assert json.loads(exported) == namespace["LEXICON"]
    assert {"phase_markers", "antonym_words", "emotions"} <= set(namespace["LEXICON"])


def test_pronouns_they_them_and_it_resolve_to_the_face_part(tem):
    extractor = tem_events.RuleEventExtractor()
    texts = [e.text for e in extractor.extract_one(
        "At the beginning, his eyebrows furrow, then they relax. In the middle, he closes his eyes and opens them again. "
        "Towards the end, they blink and he opens his mouth, then closes it.")]
    assert texts == [
        "the person's eyebrows furrow", "the person's eyebrows relax", "the person closes the person's eyes",
        "the person opens the person's eyes again", "the person's eyes blink", "the person opens the person's mouth",
        "the person closes the person's mouth"]


def test_markers_from_the_fec_bench_references_open_phases(tem):
    extractor = tem_events.RuleEventExtractor()
    events = extractor.extract_one(
        "The video shows a man. In the initial stage of the video, his eyes widen. In the final stage of the video, "
        "he smiles. At the beginning of the video, her eyelids droop slightly, and as the video progresses, her head "
        "moves slightly.")
    assert [(e.text, e.phase) for e in events] == [
        ("the person's eyes widen", 0), ("the person smiles", 1), ("the person's eyelids droop slightly", 2),
        ("the person's head moves slightly", 3)]


def test_every_temporal_opener_in_the_fec_bench_references_is_classified(tem, shared_dir):
    """Each clause-opening phrase of the form 'in/at/towards ... of the video' or 'as the ... progresses' in the 800
    references is either a phase marker of the lexicon or listed as not one."""
    import re

    data = tem_lexicon.Lexicon.load().data
    known = set(data["phase_markers"]) | set(data["phase_adverbs"]) | set(data["not_phase_markers"])
    opener = re.compile(r"(?:^|[.,;]\s*|\band\s+)((?:at|in|towards?|by|during|from|until|near|throughout) (?:the )?"
                        r"[a-z -]{0,40}?) of the video|(?:^|[.,;]\s*|\band\s+)(as (?:the )?[a-z]+ (?:progress(?:es|ed)|"
                        r"continues|goes on|passes|plays|unfolds))")
    found = set()
    for item in json.loads((shared_dir / "data" / "dfec_test.json").read_text()):
        for match in opener.finditer(re.sub(r"\s+", " ", item["caption"]).lower()):
            found.add(match.group(1) or match.group(2))
    assert found and not (found - known), sorted(found - known)


# ------------------------------------------------------------------------------------------------ conformance
def test_conformance_file_passes(tem):
    from facetrack.evaluation.tem import conformance as runner

    data = json.loads((TEM_DIR / "conformance.json").read_text(encoding="utf-8"))
    assert len(data["cases"]) >= 40 and data["corpus"]
    assert runner.compare(data, runner.run(tem, data["cases"])) == []


def test_the_metric_card_lists_every_phase_marker(tem):
    """The card is the specification: each marker, adverb and tail of the lexicon is written out in it."""
    import re

    data = tem_lexicon.Lexicon.load().data
    card = re.sub(r"\s+", " ", METRIC_CARD.read_text(encoding="utf-8"))
    missing = [p for p in data["phase_markers"] + data["phase_adverbs"] + data["phase_marker_tails"]
               if not re.search(rf"(?:^|[;:(`] ?){re.escape(p)}(?:[;`)]|$| \(| -)", card)]
    assert missing == []
