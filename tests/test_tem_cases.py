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
        # Issue 22: content respects time, so the same events at the mirrored moments keep only part of their
        # credit (before: content F1 1.0), but more than the missing-phase caption loses
        assert 0.4 < case_scores[(k, "reversed")][0]["content_f1"] < 1.0, k


# ------------------------------------------------------------------------------------------------ the issue's examples
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
    # Issue 22: phases are numbered in time order, so the second "At the beginning" (and the step after it) comes
    # before "In the final stage" (before: numbered in the order they are told).
    assert [(e.text, e.phase) for e in events] == [
        ("the person's eyes widen", 0), ("the person smiles", 3), ("the person's eyelids droop slightly", 1),
        ("the person's head moves slightly", 2)]


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


# ------------------------------------------------------------------------------------------------ issue 22
# A TEM a careful reader would trust: hand-labelled ranking pairs (tests/tem_ranking_cases.py), faithful paraphrases
# of real references (tests/tem_paraphrases.py), the chance level, volume, empty captions, the extractor's fixes.
def ranking_outcome(metric, pairs: list[dict]) -> tuple[float, list[str], dict]:
    """(share of pairs whose better caption scores higher, the failures, {class: [right, total]})."""
    predictions, references = [], []
    for pair in pairs:
        predictions += [pair["better"], pair["worse"]]
        references += [pair["reference_text"]] * 2
    scores = [s["tem"] for s in metric.compute(predictions=predictions, references=references,
                                               return_per_sample=True)["per_sample"]]
    failures, by_class = [], {}
    for k, pair in enumerate(pairs):
        right = scores[2 * k] > scores[2 * k + 1]
        by_class.setdefault(pair["class"], [0, 0])
        by_class[pair["class"]][0] += right
        by_class[pair["class"]][1] += 1
        if not right:
            failures.append(f"{pair['class']} / {pair['reference']}: {pair['why']} ({scores[2 * k]:.3f} vs "
                            f"{scores[2 * k + 1]:.3f})")
    return 1 - len(failures) / len(pairs), failures, by_class


def test_hand_labelled_pairs_are_ranked_as_a_careful_reader_ranks_them(tem):
    import tem_ranking_cases

    share, failures, by_class = ranking_outcome(tem, tem_ranking_cases.TUNED)
    print(f"\ntuned ranking cases: {share:.3f} of {len(tem_ranking_cases.TUNED)} pairs, by class {by_class}")
    assert set(by_class) == {"base", "time", "degree", "markers", "parsing", "hidden", "volume", "empty"}
    assert len(tem_ranking_cases.TUNED) >= 70
    assert share >= 0.95, failures


def test_held_out_ranking_pairs(tem):
    """Written after the rules were settled and never tuned on (first measurement: 39 of 40, README)."""
    import tem_ranking_cases

    share, failures, by_class = ranking_outcome(tem, tem_ranking_cases.HELD_OUT)
    print(f"\nheld-out ranking cases: {share:.3f} of {len(tem_ranking_cases.HELD_OUT)} pairs, by class {by_class}; "
          f"wrong: {failures}")
    assert share >= 0.9, failures


def test_faithful_paraphrases_of_real_references_score_at_least_0_9(tem, shared_dir):
    from tem_paraphrases import PARAPHRASES

    references = {item["id"]: item["caption"] for item in json.loads((shared_dir / "data" / "dfec_test.json").read_text())}
    ids = sorted(PARAPHRASES, key=int)
    result = tem.compute(predictions=[PARAPHRASES[i] for i in ids], references=[references[i] for i in ids],
                         return_per_sample=True)
    scores = [s["tem"] for s in result["per_sample"]]
    print(f"\n{len(ids)} faithful paraphrases of real references: mean TEM {result['tem']:.3f}, lowest {min(scores):.3f}")
    assert len(ids) >= 40
    assert result["tem"] >= 0.9
    assert min(scores) >= 0.7


def chance_pairs(references: list[str], shift: int) -> tuple[list[str], list[str]]:
    return [references[(k + shift) % len(references)] for k in range(len(references))], references


@pytest.mark.slow
def test_another_clips_reference_scores_well_below_the_papers_models(tem, shared_dir):
    """The chance level: each of the 800 references scored against another clip's reference (the next clip's, as
    `facetrack eval` prints it, and the clip 400 further on) is at most 0.25 on average."""
    references = [item["caption"] for item in json.loads((shared_dir / "data" / "dfec_test.json").read_text())]
    for shift in (1, len(references) // 2):
        result = tem.compute(*(), predictions=chance_pairs(references, shift)[0], references=references)
        print(f"\nanother clip's reference (shift {shift}): TEM {result['tem']:.3f}, AutoDQ {result['autodq']:.3f}")
        assert result["tem"] <= 0.25
        assert result["autodq"] <= 0.3


def test_joining_many_captions_never_scores_above_one_of_them_alone(tem):
    """Volume does not pay: several other captions joined into one never beat the best of them alone (44 hand-written
    references, each against its 5, 10 and 30 successors joined)."""
    references = [reference for reference, _, _ in CASES]
    predictions, targets, groups = [], [], []
    for k, reference in enumerate(references):
        for size in (5, 10, 30):
            others = [references[(k + 1 + j) % len(references)] for j in range(size)]
            groups.append((len(predictions), size))
            predictions += others + [" ".join(others)]
            targets += [reference] * (size + 1)
    scores = [s["tem"] for s in tem.compute(predictions=predictions, references=targets,
                                            return_per_sample=True)["per_sample"]]
    beaten = [(start, size) for start, size in groups if scores[start + size] > max(scores[start:start + size])]
    assert beaten == []
    # and padding a caption with them costs it
    padded = tem.compute(predictions=[references[0] + " " + " ".join(references[1:6])], references=[references[0]])
    assert padded["tem"] < 0.6


def test_an_empty_caption_describes_nothing(tem):
    result = tem.compute(predictions=["", "", CASES[0][0]], references=["", CASES[0][0], ""], return_per_sample=True)
    assert [s["tem"] for s in result["per_sample"]] == [0.0, 0.0, 0.0]
    assert result["autodq"] == 0.0


def test_time_words_open_phases_in_time_order(tem):
    extractor = tem_events.RuleEventExtractor()

    def phases(caption):
        return [(e.text, e.phase) for e in extractor.extract_one(caption)]

    assert phases("First, he smiles. Then he frowns. Later, he nods. Finally, he blinks.") == [
        ("the person smiles", 0), ("the person frowns", 1), ("the person nods", 2), ("the person blinks", 3)]
    # the sentence before the first marker is a phase when that marker does not open the timeline
    assert phases("He raises his eyebrows. Later, he smiles.") == [
        ("the person raises the person's eyebrows", 0), ("the person smiles", 1)]
    # ... and the appearance introduction when it does
    assert phases("This video shows a man. He looks calm. At the beginning, he nods.") == [("the person nods", 0)]
    # narrative order: told from the end, numbered in time order
    assert phases("Towards the end, she laughs. Before that, in the middle, she smiles faintly. At first, she blinks.") == [
        ("the person laughs", 2), ("the person smiles faintly", 1), ("the person blinks", 0)]
    assert phases("At the end, he closes his eyes. Earlier, he raises his eyebrows.") == [
        ("the person closes the person's eyes", 1), ("the person raises the person's eyebrows", 0)]
    assert phases("Later in the clip, he frowns. Before this, he smiled. To start with, he looked down.") == [
        ("the person frowns", 2), ("the person smiled", 1), ("the person looked down", 0)]
    # "then" inside a sentence is a step of that sentence's phase
    events = extractor.extract_one("At the beginning, he blinks, then he smiles. Towards the end, he nods.")
    assert [(e.phase, e.segment) for e in events] == [(0, 0), (1, 0), (2, 2)]
    assert [round(x, 3) for x in tem_scoring.phase_positions(events)] == [0.125, 0.375, 0.75]


@pytest.mark.parametrize(("caption", "expected"), [
    # "a bit" is "slightly", never a form of "bite"
    ("At first, he opens his mouth a bit.", [("mouth.open", "low")]),
    # static appearance inside a phase is kept when it states a facial action ...
    ("At first, he has slight wrinkles on his forehead and frowns.", [("forehead.wrinkle", "low"), ("brows.furrow", None)]),
    # ... and dropped when it does not
    ("At first, he has short hair and frowns.", [("brows.furrow", None)]),
    # "no change" keeps what holds a real event
    ("In the middle, there is no obvious change in his eyes except that he smiles slightly.", [("mouth.smile", "low")]),
    ("In the middle, his lips tremble slightly, with no significant change in his expression.", [("mouth.tremble", "low")]),
    # camera and hair motion are not the face's
    ("At first, the camera moves closer and her hair sways to the left. She turns her head.", [("head.turn", None)]),
    # degree words and the degree a word carries
    ("At first, he grins, then smirks, then smiles.", [("mouth.smile", "high"), ("mouth.smile", "low"), ("mouth.smile", None)]),
    ("At first, his mouth opens slightly, revealing his teeth.", [("mouth.open", "low"), ("teeth.show", None)]),
])
def test_issue_22_parse_fixes(tem, caption, expected):
    parse = tem_lexicon.parse_event
    found = [(f.unit, f.intensity) for e in tem_events.RuleEventExtractor().extract_one(caption)
             for f in parse(e.text).facets]
    assert found == expected


def test_a_missing_direction_is_not_any_direction(tem):
    lexicon = tem_lexicon.Lexicon.load()
    parse = tem_lexicon.parse_event
    up, fixed = parse("the person looks up at the ceiling").core, parse("the person keeps a focused gaze").core
    assert sorted(fixed.directions) == ["forward"] and not lexicon.same_action(up, fixed)
    turn, left = parse("the person turns the person's head").core, parse("the person turns the person's head to the left").core
    assert lexicon.same_action(turn, left) and lexicon.match_weight(turn, left) == 0.5


def test_the_degree_vocabulary_of_the_references_is_classified(tem, shared_dir):
    """Every -ly word used at least 3 times in the 800 references is a degree word, an intensifier, a phase adverb or
    listed as not a degree (speed, frequency, manner)."""
    import re

    data = tem_lexicon.Lexicon.load().data
    known = ({w for words in data["intensity_words"].values() for w in words} | set(data["intensifiers"])
             | set(data["not_degree_words"]) | set(data["phase_adverbs"]))
    counts: dict[str, int] = {}
    for item in json.loads((shared_dir / "data" / "dfec_test.json").read_text()):
        for word in re.findall(r"\b[a-z]+ly\b", item["caption"].lower()):
            counts[word] = counts.get(word, 0) + 1
    assert sorted(w for w, n in counts.items() if n >= 3 and w not in known) == []


@pytest.mark.slow
def test_a_cold_benchmark_run_finishes(shared_dir):
    """benchmarks/bench_metric.py scores pairs in a new process (the timing itself is reported, not tested)."""
    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_metric.py"
    completed = subprocess.run([sys.executable, str(bench), "--limit", "80"], capture_output=True, text=True,
                               timeout=600, env={**__import__("os").environ, "FACETRACK_SHARED_DIR": str(shared_dir)})
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "TEM cold" in completed.stdout and "tem=" in completed.stdout
