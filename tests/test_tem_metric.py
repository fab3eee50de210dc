"""TEM metric (evaluate_metric/tem): properties with the default offline backends, FEC-Bench references, the LLM
backends against a fake OpenAI-compatible server, bad input, and loading with evaluate.load offline.

(One file for the metric module's behaviour: its tests share one loaded metric, whose first load takes seconds.)
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from facetrack.evaluation.tem import calibration as tem_calibration
from facetrack.evaluation.tem import events as tem_events
from facetrack.evaluation.tem import lexicon as tem_lexicon
from facetrack.evaluation.tem import llm_backends as tem_llm_backends
from facetrack.evaluation.tem import relations as tem_relations
from facetrack.evaluation.tem import scoring as tem_scoring
from facetrack.evaluation.tem.metric import load_tem_metric

# The metric's `evaluate` module folder (its Hub layout: tem.py, card, demo, requirements).
TEM_METRIC_DIR = Path(__file__).resolve().parents[1] / "evaluate_metric" / "tem"

REFERENCE = (
    "This video shows the changing facial expressions of a young woman. She has long black hair and fair skin.\n"
    "At the beginning of the video, she raises her eyebrows and opens her mouth slightly. "
    "As the video progresses, she blinks and turns her head to the left. "
    "In the middle of the video, she smiles, revealing her upper teeth. "
    "Towards the end of the video, she lowers her head and closes her eyes."
)
# The same events, each phase's content moved to the mirrored phase.
REVERSED_PHASES = (
    "This video shows the changing facial expressions of a young woman. She has long black hair and fair skin.\n"
    "At the beginning of the video, she lowers her head and closes her eyes. "
    "As the video progresses, she smiles, revealing her upper teeth. "
    "In the middle of the video, she blinks and turns her head to the left. "
    "Towards the end of the video, she raises her eyebrows and opens her mouth slightly."
)
PARAPHRASE = (
    "The clip shows a woman with dark hair. Initially, her eyebrows lift and her mouth opens a little. "
    "Then she blinks, and her head turns to the left. Midway through, she smiles and her upper teeth show. "
    "Finally, her head drops down and her eyes close."
)
UNRELATED = (
    "The video shows an elderly man with a grey beard. At the beginning, he frowns and presses his lips together. "
    "Then he nods his head several times. Towards the end, he squints his eyes and puffs out his cheeks."
)


@pytest.fixture(scope="session")
def tem():
    """One metric object (and one MiniLM) for the whole session."""
    return load_tem_metric()



def score(metric, prediction: str, reference: str, **kwargs) -> dict:
    result = metric.compute(predictions=[prediction], references=[reference], return_per_sample=True, **kwargs)
    return result["per_sample"][0]


# ------------------------------------------------------------------------------------------------ extraction
def test_rule_extractor_phases_appearance_and_pronouns(tem):
    events = tem_events.RuleEventExtractor().extract_one(REFERENCE)
    texts = [event.text for event in events]
    assert texts == [
        "the person raises the person's eyebrows",
        "the person opens the person's mouth slightly",
        "the person blinks",
        "the person turns the person's head to the left",
        "the person smiles, revealing the person's upper teeth",
        "the person lowers the person's head",
        "the person closes the person's eyes",
    ]
    assert [event.phase for event in events] == [0, 0, 1, 1, 2, 3, 3]
    assert not any("hair" in text for text in texts)  # the appearance sentence is dropped


def test_rule_extractor_then_opens_a_phase_and_no_change_is_dropped(tem):
    extractor = tem_events.RuleEventExtractor()
    events = extractor.extract_one(
        "In the middle of the video, he puffs up his mouth forcefully, then slowly relaxes it. "
        "Towards the end of the video, there is no obvious change in his facial expression."
    )
    assert [(e.text, e.phase) for e in events] == [
        ("the person puffs up the person's mouth forcefully", 0), ("the person slowly relaxes the person's mouth", 1)]
    # No phase markers at all: each sentence is its own phase.
    plain = extractor.extract_one("He smiles. He frowns and looks down.")
    assert [(e.text, e.phase) for e in plain] == [
        ("the person smiles", 0), ("the person frowns", 1), ("the person looks down", 1)]


def test_lcs_treats_events_of_one_phase_as_simultaneous(tem):
    scoring = tem_scoring
    Event = tem_events.Event
    pred = [Event("a", 0), Event("b", 0), Event("c", 1)]
    ref = [Event("b", 0), Event("a", 0), Event("c", 1)]
    assert len(scoring.longest_ordered_chain([(0, 1), (1, 0), (2, 2)], pred, ref)) == 3
    # a and b are simultaneous in the prediction, so they fit any reference order; c after them does not.
    ref_reversed = [Event("c", 0), Event("b", 1), Event("a", 2)]
    assert scoring.longest_ordered_chain([(0, 2), (1, 1), (2, 0)], pred, ref_reversed) == [(1, 1), (0, 2)]
    strict_pred = [Event("a", 0), Event("b", 1), Event("c", 2)]
    assert len(scoring.longest_ordered_chain([(0, 2), (1, 1), (2, 0)], strict_pred, ref_reversed)) == 1


# ------------------------------------------------------------------------------------------------ properties
def test_caption_against_itself_scores_one_everywhere(tem):
    for caption in (REFERENCE, PARAPHRASE, UNRELATED):
        result = score(tem, caption, caption)
        for key in ("content_precision", "content_recall", "content_f1", "temporal", "tem"):
            assert result[key] == 1.0, (key, caption)


def test_reversed_phase_order_loses_content_and_temporal(tem):
    # Issue 22: content matching respects time, so the same events told at the other end of the clip keep only
    # part of their content credit (before: content F1 >= 0.95); the order check still drops the temporal score.
    result = score(tem, REVERSED_PHASES, REFERENCE)
    paraphrase = score(tem, PARAPHRASE, REFERENCE)
    assert 0.5 <= result["content_f1"] <= 0.8 < paraphrase["content_f1"]
    assert result["temporal"] <= 0.5
    assert result["tem"] <= 0.5


def test_dropping_one_event_lowers_recall_only(tem):
    shorter = REFERENCE.replace(" and closes her eyes", "")
    result = score(tem, shorter, REFERENCE)
    assert result["content_precision"] == 1.0
    assert result["temporal"] == 1.0
    # Issue 22: recall is the informativeness-weighted share of the reference's facets (8 here: "smiles, revealing
    # her upper teeth" states two); before, the plain share of events, 6 / 7.
    lexicon = tem_lexicon.Lexicon.load()
    values = [v for e in tem_events.RuleEventExtractor().extract_one(REFERENCE)
              for v in lexicon.item_values(tem_lexicon.parse_event(e.text))]
    closes_eyes = lexicon.item_values(tem_lexicon.parse_event("the person closes the person's eyes"))[0]
    assert result["content_recall"] == pytest.approx(1 - closes_eyes / sum(values))
    assert result["num_prediction_events"] == 6 and result["num_reference_events"] == 7
    assert result["num_prediction_items"] == 7 and result["num_reference_items"] == 8


def test_unrelated_caption_scores_far_below_a_paraphrase(tem):
    paraphrase = score(tem, PARAPHRASE, REFERENCE)
    unrelated = score(tem, UNRELATED, REFERENCE)
    assert paraphrase["tem"] >= 0.5
    assert paraphrase["tem"] - unrelated["tem"] >= 0.4
    assert unrelated["content_f1"] <= 0.2


def test_opposite_actions_are_contradictions(tem):
    result = tem.compute(predictions=["At the beginning, he lowers his eyebrows."],
                         references=["At the beginning, he raises his eyebrows."], return_events=True)
    assert result["tem"] == 0.0
    assert result["events"][0]["table"][0]["relation"] == "contradiction"


def test_empty_prediction_scores_zero(tem):
    result = score(tem, "", REFERENCE)
    assert result["tem"] == 0.0 and result["content_recall"] == 0.0 and result["num_prediction_events"] == 0
    both_empty = score(tem, "", "")
    # Issue 22: an empty caption describes nothing, so two of them are not a perfect match (AutoDQ's convention,
    # 1.0, made saying nothing a perfect score).
    assert both_empty["tem"] == 0.0 and both_empty["content_precision"] == 0.0


def test_results_are_identical_across_runs(tem):
    predictions, references = [PARAPHRASE, UNRELATED, REVERSED_PHASES], [REFERENCE] * 3
    first = tem.compute(predictions=predictions, references=references, return_per_sample=True, return_events=True)
    second = load_tem_metric().compute(predictions=predictions, references=references, return_per_sample=True,
                                       return_events=True)
    assert first == second


def test_matched_event_table_lists_matches_and_misses(tem):
    result = tem.compute(predictions=[REFERENCE.replace(" and closes her eyes", "")], references=[REFERENCE],
                         return_events=True)
    table = result["events"][0]["table"]
    assert sum(row["relation"] == "entailment" and row["in_order"] for row in table) == 6
    missed = [row for row in table if row["relation"] == "missed"]
    assert [row["reference_event"] for row in missed] == ["the person closes the person's eyes"]


def test_shipped_threshold_is_the_most_accurate_on_the_embedding_pairs(tem):
    """The embedding's threshold (it decides only events outside the lexicon, and relation="minilm")."""
    relations = tem_relations
    pairs = tem_calibration.EMBEDDING_PAIRS
    classifier = relations.SimilarityRelationClassifier()
    classifier.embed([text for a, b, _ in pairs for text in (a, b)])  # one batch; similarity() then reads the cache
    similarity = [float(classifier.similarity([a], [b])[0, 0]) for a, b, _ in pairs]

    def accuracy(threshold: float) -> float:
        classifier.entailment_threshold = threshold
        return sum(classifier.classify_pair(a, b, s) == label for (a, b, label), s in zip(pairs, similarity)) / len(pairs)

    shipped = accuracy(relations.ENTAILMENT_THRESHOLD)
    assert shipped >= 0.8
    assert all(shipped >= accuracy(t / 100) for t in range(40, 95, 5))


def test_default_relations_agree_with_the_labelled_pairs(tem):
    """Three-way accuracy of the default backend (lexicon rules, embedding fallback) on all >= 200 labelled pairs."""
    relations = tem_relations
    Event = tem_events.Event
    pairs = tem_calibration.CALIBRATION_PAIRS
    assert len(pairs) >= 200
    assert {label for _, _, label in pairs} == {"entailment", "neutral", "contradiction"}
    found = relations.LexiconRelationClassifier().classify([([Event(a, 0)], [Event(b, 0)], a, b) for a, b, _ in pairs])
    predicted = ["contradiction" if r.contradiction[0, 0] else "entailment" if r.pred_entailed[0, 0] or r.ref_entailed[0, 0]
                 else "neutral" for r in found]
    wrong = [(a, b, label, got) for (a, b, label), got in zip(pairs, predicted) if got != label]
    assert 1 - len(wrong) / len(pairs) >= 0.93, wrong


# ------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("predictions", "references", "message"),
    [
        (["a", "b"], ["a"], "2 predictions but 1 references"),
        (["a", None], ["a", "b"], r"predictions\[1\] is NoneType"),
        (["a", "b"], ["a", 3], r"references\[1\] is int"),
        (None, ["a"], "`predictions` is None"),
        (["a"], None, "`references` is None"),
        ("a caption", ["a"], "must be a list of strings"),
        ([], [], "empty"),
        (["a \ud800 b"], ["a"], r"predictions\[0\] is not valid Unicode: surrogates not allowed '\\ud800' at character 2"),
        (["a"], ["x\udcffy"], r"references\[0\] is not valid Unicode"),
    ],
)
def test_bad_input_names_the_problem(tem, predictions, references, message):
    with pytest.raises(ValueError, match=message):
        tem.compute(predictions=predictions, references=references)


def test_add_batch_then_compute(tem):
    metric = load_tem_metric()
    metric.add_batch(predictions=[REFERENCE], references=[REFERENCE])
    metric.add_batch(predictions=[""], references=[REFERENCE])
    assert metric.compute()["tem"] == 0.5
    with pytest.raises(ValueError, match=r"predictions\[0\] is int"):
        metric.add_batch(predictions=[1], references=["a"])


def test_unknown_backend_and_argument_are_rejected(tem):
    with pytest.raises(ValueError, match="unknown extractor 'spacy'"):
        tem.compute(predictions=["a b"], references=["a b"], extractor="spacy")
    with pytest.raises(ValueError, match="unknown argument"):
        tem.compute(predictions=["a b"], references=["a b"], treshold=0.5)


# ------------------------------------------------------------------------------------------------ FEC-Bench
def drop_last_phase(caption: str, phase_marker: re.Pattern) -> str:
    """The caption without its last phase (from the last sentence opening a phase); else without its last sentence."""
    sentences = re.split(r"(?<=[.!?])\s+", caption.strip())
    starts = [index for index, sentence in enumerate(sentences) if phase_marker.match(sentence.lower())]
    cut = starts[-1] if len(starts) >= 2 else len(sentences) - 1
    return " ".join(sentences[:cut])


@pytest.mark.slow
def test_fec_bench_references(tem, fec_bench_annotations):
    items = json.loads(fec_bench_annotations.read_text())
    references = [item["caption"] for item in items]
    marker = tem_events.phase_marker_patterns()[0]
    itself = tem.compute(predictions=references, references=references, return_per_sample=True)["per_sample"]
    assert all(sample["tem"] == 1.0 for sample in itself)
    truncated = [drop_last_phase(caption, marker) for caption in references]
    other = references[1:] + references[:1]  # another clip's reference
    partial = tem.compute(predictions=truncated, references=references, return_per_sample=True)["per_sample"]
    unrelated = tem.compute(predictions=other, references=references, return_per_sample=True)["per_sample"]
    share = sum(p["tem"] > u["tem"] for p, u in zip(partial, unrelated)) / len(references)
    print(f"\nTEM(reference without its last phase) > TEM(another clip's reference): {share:.1%} of "
          f"{len(references)} FEC-Bench clips")
    assert share >= 0.95


# ------------------------------------------------------------------------------------------------ LLM backends
def answer_like_an_llm(prompt: str) -> str:
    """A fake LLM: extracts events by splitting sentences, judges by exact event match."""
    if prompt.startswith("You are given a caption"):
        caption = prompt.split('Caption: """', 1)[1].split('"""', 1)[0]
        return json.dumps([s.strip(" .").lower() for s in re.split(r"[.;]", caption) if s.strip()][:10])
    caption_events = re.findall(r"^\d+\. (.*)$", prompt.split("Events to judge:")[0], flags=re.M)
    judged = re.findall(r"^\d+\. (.*)$", prompt.split("Events to judge:")[1], flags=re.M)
    items = []
    for index, event in enumerate(judged, start=1):
        match = next((k for k, other in enumerate(caption_events, start=1) if other == event), None)
        items.append({"event": index, "relation": "entailment" if match else "neutral", "match": match})
    return json.dumps(items)


def test_llm_backends_are_cached_on_disk(tem, tmp_path, fake_chat_server):
    server = fake_chat_server(answer_like_an_llm)
    options = {"extractor": "llm", "relation": "llm", "llm_model": "fake-judge", "llm_base_url": server.url,
               "llm_cache_dir": str(tmp_path / "cache"), "llm_protocol": "facetrack"}
    predictions = ["He smiles. He blinks.", "He nods."]
    references = ["He blinks. He smiles.", "He nods. He frowns."]
    first = tem.compute(predictions=predictions, references=references, return_per_sample=True, **options)
    calls_first = server.calls
    assert calls_first == 4 + 4  # 4 extractions, 2 judge calls per sample
    assert first["per_sample"][0]["content_f1"] == 1.0 and first["per_sample"][0]["temporal"] == 0.5
    assert first["per_sample"][1]["content_recall"] == 0.5
    second = load_tem_metric(**options).compute(predictions=predictions, references=references, return_per_sample=True)
    assert server.calls == calls_first  # the rerun is answered from the disk cache
    assert second == first
    assert len(list((tmp_path / "cache").rglob("*.json"))) == calls_first


def test_llm_endpoint_errors_are_clear(tem, tmp_path):
    with pytest.raises(ValueError, match="could not reach the LLM endpoint"):
        tem.compute(predictions=["He smiles."], references=["He smiles."], extractor="llm", llm_model="x",
                    llm_base_url="http://127.0.0.1:9/v1", llm_cache_dir=str(tmp_path))


def test_nli_backend_with_a_local_cross_encoder(tem, tmp_path):
    """A tiny random-weight BERT NLI model saved locally (no NLI model ships in a pip package): the backend loads it,
    reads its labels, and scores deterministically in range."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(tem_relations.minilm_path())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, num_labels=3,
                        id2label={0: "contradiction", 1: "entailment", 2: "neutral"},
                        label2id={"contradiction": 0, "entailment": 1, "neutral": 2})
    import torch

    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(tmp_path / "nli")
    tokenizer.save_pretrained(tmp_path / "nli")
    options = {"relation": "nli", "nli_model": str(tmp_path / "nli")}
    first = tem.compute(predictions=[PARAPHRASE], references=[REFERENCE], return_per_sample=True, **options)
    second = tem.compute(predictions=[PARAPHRASE], references=[REFERENCE], return_per_sample=True, **options)
    assert first == second
    assert all(0.0 <= first[key] <= 1.0 for key in ("tem", "content_f1", "temporal", "autodq"))
    assert first["per_sample"][0]["num_reference_events"] == 7
    config.id2label = {0: "yes", 1: "no"}
    config.num_labels = 2
    BertForSequenceClassification(config).save_pretrained(tmp_path / "bad")
    tokenizer.save_pretrained(tmp_path / "bad")
    with pytest.raises(ValueError, match="must have 'entailment' and 'contradiction' labels"):
        tem.compute(predictions=["a b"], references=["a b"], relation="nli", nli_model=str(tmp_path / "bad"))


# ------------------------------------------------------------------------------------------------ loading
def test_gradio_app_scores_a_pair():
    pytest.importorskip("gradio")
    spec = importlib.util.spec_from_file_location("tem_space_app", TEM_METRIC_DIR / "app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)  # imports the demo, does not launch
    app.build_demo()
    from facetrack.evaluation.tem import scoring_ui as app

    scores, rows = app.score_captions(REFERENCE.replace(" and closes her eyes", ""), REFERENCE)
    # the UI shows the metric's own numbers (issue 22 changed them: a facet-weighted F_0.5, not 2 * (6/7) / (1 + 6/7))
    expected = score(load_tem_metric(), REFERENCE.replace(" and closes her eyes", ""), REFERENCE)["tem"]
    assert scores["tem"] == pytest.approx(expected, abs=1e-4) and 0.9 < expected < 1.0
    assert [row[5] for row in rows] == ["entailment"] * 6 + ["missed"]
    assert rows[-1][2] == "the person closes the person's eyes"


def test_evaluate_load_offline_in_a_fresh_process(tmp_path):
    code = (
        "import evaluate, sys\n"
        f"tem = evaluate.load({str(TEM_METRIC_DIR)!r})\n"
        "result = tem.compute(predictions=[''], references=[''])\n"  # no events: no model needed
        "assert result['tem'] == 0.0, result\n"  # issue 22: empty against empty describes nothing
        # the copy in the module cache carries the lexicon (a .py data module; no embedding needed here)
        "pair = tem.compute(predictions=['At first, he knits his brow.'], references=['At first, his brow furrows.'])\n"
        "assert pair['tem'] == 1.0, pair\n"
        "assert 'Temporal Event Matching' in (tem.description + sys.modules[type(tem).__module__].__doc__)\n"
        "print('ok', type(tem).__name__)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"),
           "HF_EVALUATE_OFFLINE": "1"}
    completed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                               cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "ok TEM" in completed.stdout
    copied = {path.name for path in Path(tmp_path / "modules").rglob("*.py")}
    assert "tem.py" in copied  # the entry point; the implementation is the installed facetrack.evaluation.tem


def autodq_fake_llm(broken_first: set[str], always_broken: set[str]):
    """A fake LLM speaking AutoDQ's formats. Extraction: one event per sentence, as a fenced Python dict. Judge:
    entailment when the event's words all occur in the description. The first answer to a judge prompt holding a
    word of `broken_first` has one item too few (AutoDQ retries it); every answer about `always_broken` is junk."""
    seen: dict[str, int] = {}

    def answer(prompt: str) -> str:
        seen[prompt] = seen.get(prompt, 0) + 1
        if any(word in prompt for word in always_broken):
            return "I cannot help with that."
        if prompt.startswith("Bellow is a description of a video clip:"):
            caption = prompt.split("Video Description: ", 1)[1].split("\n\nExtract", 1)[0]
            events = [s.strip() for s in caption.split(".") if s.strip()]
            return "```python\n" + repr({"events": events}) + "\n```"
        description = prompt.split("Video Description:\n", 1)[1].split("\n\nEvents: ", 1)[0]
        events = ast.literal_eval(prompt.split("\n\nEvents: ", 1)[1].split("\nOutput a JSON", 1)[0])
        items = [{"event": e, "relationship": "entailment" if set(e.split()) <= set(description.replace(".", "").split())
                  else "neutral", "reason": "fake"} for e in events]
        if seen[prompt] == 1 and any(word in prompt for word in broken_first):
            items = items[:-1]
        return json.dumps({"events": items})

    return answer


def test_autodq_protocol_lowercases_retries_and_drops_failed_samples(tem, tmp_path, fake_chat_server):
    prompts: list[str] = []
    fake = autodq_fake_llm(broken_first={"nods"}, always_broken={"unreadable"})
    server = fake_chat_server(lambda prompt: (prompts.append(prompt), fake(prompt))[1])
    options = {"extractor": "llm", "relation": "llm", "llm_model": "fake-gpt", "llm_base_url": server.url,
               "llm_cache_dir": str(tmp_path / "cache")}
    predictions = ["He smiles. He Blinks.", "He nods. He frowns.", "This caption is unreadable."]
    references = ["He blinks. He smiles.", "He nods.", "He smiles."]
    result = tem.compute(predictions=predictions, references=references, return_per_sample=True, **options)
    # Tarsier's prompts, on lower-cased captions
    assert prompts[0].startswith("Bellow is a description of a video clip:\nVideo Description: he smiles. he blinks.")
    assert any(p.startswith("Given a video description and a list of events.") for p in prompts)
    assert not any("Blinks" in p for p in prompts)
    # sample 2 failed every try (10 per call): dropped from the averages and counted
    assert result["num_failed"] == 1 and result["per_sample"][2] == {"failed": True}
    assert sum("unreadable" in p for p in prompts) == 10
    first, second = result["per_sample"][0], result["per_sample"][1]
    assert first["content_precision"] == first["content_recall"] == 1.0
    assert first["temporal"] == 0.5  # the order check still applies (positions are phases)
    assert second["content_recall"] == 1.0 and second["content_precision"] == 0.5  # the retried judge answer counted
    assert result["tem"] == pytest.approx((first["tem"] + second["tem"]) / 2)
    calls = server.calls
    again = load_tem_metric(**options).compute(predictions=predictions, references=references, return_per_sample=True)
    assert again == result and server.calls == calls  # every try, retries included, is cached


def test_autodq_judge_answer_repairs_follow_tarsier(tem):
    clean = tem_llm_backends.clean_judge_answer
    assert json.loads(clean('```json\n"events": [{"event": "a", "relationship": "entailment",}]\n```')) == {
        "events": [{"event": "a", "relationship": "entailment"}]}
