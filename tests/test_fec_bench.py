"""FEC-Bench evaluation: captioning metrics, annotation/prediction files, the table, and `facetrack eval` end to end
(with a predictions file, and with a tiny real FaceTrack-MM model on real videos)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facetrack.commands.cli import main
from facetrack.evaluation.fec_bench import (
    PAPER_COLUMNS,
    PAPER_TABLE,
    format_table,
    load_annotations,
    read_predictions,
)
from facetrack.evaluation.errors import BenchmarkError
from facetrack.evaluation.caption_metrics import caption_metrics

REFERENCES = [
    "At the beginning of the video, he raises his eyebrows. Towards the end of the video, he smiles and blinks.",
    "At the beginning of the video, she frowns and looks down. In the middle of the video, she turns her head to the left.",
]


def test_caption_metrics_identical_and_different():
    same = caption_metrics(REFERENCES, REFERENCES)
    assert same["rouge_l"] == pytest.approx(1.0)
    assert same["bleu4"] == pytest.approx(1.0)
    assert same["cider"] > 1.0  # CIDEr-D is on pycocoevalcap's 0-10 scale
    if same["meteor"] is None:  # no WordNet on this machine: reported, never a silent 0
        assert "METEOR unavailable" in same["meteor_note"]
    else:
        assert same["meteor"] > 0.95
    swapped = caption_metrics(REFERENCES[::-1], REFERENCES)
    for key in ("rouge_l", "bleu4", "cider"):
        assert swapped[key] < same[key]


def test_caption_metrics_reject_mismatched_lengths():
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        caption_metrics(REFERENCES, REFERENCES[:1])


def test_annotations_and_predictions_are_validated(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"id": 1, "video": "a.mp4", "caption": "x"}, {"id": "1", "video": "b.mp4", "caption": "y"}]))
    with pytest.raises(BenchmarkError, match="item 1 repeats id '1'"):
        load_annotations(bad)
    bad.write_text(json.dumps([{"id": 1, "caption": "x"}]))
    with pytest.raises(BenchmarkError, match=r"item 0 \(id=1\) has no non-empty string video"):
        load_annotations(bad)
    predictions = tmp_path / "p.jsonl"
    predictions.write_text('{"id": 1, "prediction": "he smiles"}\nnot json\n')
    with pytest.raises(BenchmarkError, match="p.jsonl:2 is not JSON"):
        read_predictions(predictions)


def test_table_follows_the_paper_column_order():
    metrics = {"cider": 0.5, "rouge_l": 0.25, "autodq": 0.4, "tem": 0.3, "bleu4": 0.1, "meteor": None,
               "meteor_note": "METEOR unavailable: test", "tem_content_f1": 0.4, "tem_temporal": 0.75}
    table = format_table("ours", metrics, num_scored=7, num_missing=2)
    lines = table.splitlines()
    assert lines[0] == "| Model | " + " | ".join(PAPER_COLUMNS) + " |"
    assert "| GPT-4o | 4.18 | 3.98 | 4.50 | 3.92 | 0.225 | 0.179 | 0.410 | 0.291 |" in lines
    assert "| **ours** | n/a | n/a | n/a | n/a | 0.500 | 0.250 | 0.400 | 0.300 |" in lines
    assert "| ours | 0.100 | n/a | 0.400 | 0.750 | 7 | 2 |" in lines
    assert "| Model | BLEU-4 | METEOR (NLTK) |" in table
    assert "CIDEr's IDF then comes from that subset" in table and "0-10 scale" in table
    assert "METEOR unavailable: test" in table
    assert len(PAPER_TABLE) == 8


def write_fake_predictions(items: list[dict], path: Path) -> None:
    """Item 0 predicted perfectly, item 1 with its first sentence only, item 2 with another clip's caption."""
    records = [
        {"id": items[0]["id"], "prediction": items[0]["caption"]},
        {"id": items[1]["id"], "prediction": items[1]["caption"].split(". ")[0] + "."},
        {"id": items[2]["id"], "prediction": items[5]["caption"]},
    ]
    path.write_text("".join(json.dumps(record) + "\n" for record in records))


def test_eval_with_predictions_file(fec_bench_annotations, tmp_path, capsys):
    items = json.loads(fec_bench_annotations.read_text())[:6]
    annotations = tmp_path / "test.json"
    annotations.write_text(json.dumps(items[:4]))  # item 3 has no prediction
    predictions = tmp_path / "predictions.jsonl"
    write_fake_predictions(items, predictions)
    code = main(["eval", "--predictions", str(predictions), "--annotations", str(annotations),
                 "--out", str(tmp_path / "results"), "--name", "fake"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| **fake** | n/a | n/a | n/a | n/a |" in printed
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    assert results["num_scored"] == 3 and results["num_without_prediction"] == 1
    metrics = results["metrics"]
    for key in ("cider", "rouge_l", "bleu4", "autodq", "tem", "tem_temporal"):
        assert 0.0 < metrics[key] < (10.0 if key == "cider" else 1.0), key
    markdown = (tmp_path / "results" / "results.md").read_text()
    assert markdown.startswith("| Model | Correctness |") and "| Model | BLEU-4 | METEOR (NLTK) |" in markdown
    if metrics["meteor"] is not None:
        assert "0.12-0.20 higher" in markdown  # NLTK's METEOR is not Java METEOR 1.5
    assert "Only 3 of 4 clips were scored: CIDEr's IDF" in markdown  # item 3 has no prediction


def test_eval_prints_the_chance_row_beside_the_papers_rows(fec_bench_annotations, tmp_path, capsys):
    """Issue 22: the metrics of another clip's reference (clip k scored with clip k+1's reference) as a row between
    the paper's rows and ours, also with --predictions; in results.json with the derangement; cached."""
    from facetrack.evaluation.fec_bench import CHANCE_ROW, chance_predictions

    items = json.loads(fec_bench_annotations.read_text())[:6]
    annotations = tmp_path / "test.json"
    annotations.write_text(json.dumps(items[:4]))
    predictions = tmp_path / "predictions.jsonl"
    write_fake_predictions(items, predictions)
    out = tmp_path / "results"
    argv = ["eval", "--predictions", str(predictions), "--annotations", str(annotations), "--out", str(out),
            "--name", "fake"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split(" | ")[0].strip("| *") for line in lines[:12]]
    assert rows.index("FaceTrack-MM 7B (paper)") + 1 == rows.index(CHANCE_ROW) == rows.index("fake") - 1
    chance_line = next(line for line in lines if line.startswith(f"| {CHANCE_ROW} | n/a | n/a | n/a | n/a |"))
    results = json.loads((out / "results.json").read_text())
    chance = results["chance"]
    assert chance["num_references"] == 4 and "clip k+1" in chance["derangement"]
    assert chance_line.endswith(f" {chance['metrics']['tem']:.3f} |")
    references = [item["caption"] for item in items[:4]]
    assert chance_predictions(references) == references[1:] + references[:1]
    assert all(p != r for p, r in zip(chance_predictions(references), references))
    # cached: a second run reads out/chance.json (same references, same options)
    stored = (out / "chance.json").read_text()
    assert main(argv) == 0 and (out / "chance.json").read_text() == stored
    capsys.readouterr()
    assert main(argv + ["--no-chance-row"]) == 0
    assert CHANCE_ROW not in capsys.readouterr().out


def test_eval_with_a_judge_fills_the_gpt_columns(fec_bench_annotations, tmp_path, capsys, monkeypatch,
                                                fake_chat_server):
    monkeypatch.setenv("TEM_CACHE_DIR", str(tmp_path / "cache"))
    items = json.loads(fec_bench_annotations.read_text())[:6]
    annotations = tmp_path / "test.json"
    annotations.write_text(json.dumps(items[:3]))
    predictions = tmp_path / "predictions.jsonl"
    write_fake_predictions(items, predictions)
    # A judge that scores 4 for correctness and 2 otherwise.
    server = fake_chat_server(lambda prompt: json.dumps({"score": 4 if "factual accuracy" in prompt else 2}))
    argv = ["eval", "--predictions", str(predictions), "--annotations", str(annotations), "--out",
            str(tmp_path / "results"), "--name", "judged", "--judge-model", "fake", "--judge-base-url", server.url]
    assert main(argv) == 0
    assert server.calls == 3 * 4
    assert "| **judged** | 4.00 | 2.00 | 2.00 | 2.00 |" in capsys.readouterr().out
    assert main(argv) == 0 and server.calls == 12  # answers come from the disk cache


def test_eval_bad_input_is_one_line_exit_2(tmp_path, capsys):
    annotations = tmp_path / "test.json"
    annotations.write_text("[]")
    predictions = tmp_path / "p.jsonl"
    predictions.write_text("")
    assert main(["eval", "--predictions", str(predictions), "--annotations", str(annotations)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("facetrack eval: error:") and "non-empty JSON list" in error and "\n" not in error


def test_eval_with_tiny_model_lists_missing_videos_and_resumes(media_dir, tmp_path, capsys):
    pytest.importorskip("facetrack.hub")
    from facetrack.hub.builders import build_tiny_model

    model_dir = build_tiny_model(tmp_path / "model", tokenizer="trained")
    annotations = tmp_path / "test.json"
    annotations.write_text(json.dumps([
        {"id": "0", "video": "single_face.mp4", "caption": "At the beginning, he smiles. Towards the end, he frowns."},
        {"id": "1", "video": "WolfgangLanger_Pexels.mp4", "caption": "At the beginning, she blinks. Later, she smiles."},
        {"id": "2", "video": "DFEW/videos/missing.mp4", "caption": "At the beginning, he nods."},
    ]))
    out = tmp_path / "results"
    argv = ["eval", "--model", str(model_dir), "--annotations", str(annotations), "--video-root", str(media_dir),
            "--out", str(out), "--batch-size", "2", "--num-frames", "2", "--max-new-tokens", "6", "--device", "cpu"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "missing: DFEW/videos/missing.mp4 (id 2)" in captured.err
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == ["0", "1"]
    results = json.loads((out / "results.json").read_text())
    assert results["num_scored"] == 2 and results["num_missing_videos"] == 1
    assert results["missing_videos"] == ["DFEW/videos/missing.mp4"]
    assert "| 2 | 1 |" in captured.out  # scored / missing columns of the printed table
    # A rerun finds both ids done: no new generation, same predictions file.
    assert main(argv) == 0
    assert (out / "predictions.jsonl").read_text().splitlines() == lines


def test_eval_skips_unreadable_videos_and_refuses_to_mix_generation_settings(tiny_model_dir, media_dir, tmp_path,
                                                                              capsys):
    video_root = tmp_path / "videos"
    video_root.mkdir()
    (video_root / "good.mp4").symlink_to(media_dir / "single_face.mp4")
    (video_root / "bad.mp4").write_text("this is not a video")
    annotations = tmp_path / "test.json"
    annotations.write_text(json.dumps([
        {"id": "good", "video": "good.mp4", "caption": "At the beginning, he smiles. Towards the end, he frowns."},
        {"id": "bad", "video": "bad.mp4", "caption": "At the beginning, he nods."},
    ]))
    out = tmp_path / "results"
    argv = ["eval", "--model", str(tiny_model_dir), "--annotations", str(annotations), "--video-root",
            str(video_root), "--out", str(out), "--batch-size", "2", "--num-frames", "2", "--max-new-tokens", "4",
            "--device", "cpu"]
    assert main(argv) == 0  # one bad file does not stop the benchmark
    captured = capsys.readouterr()
    assert "unreadable: bad.mp4 (id bad)" in captured.err
    results = json.loads((out / "results.json").read_text())
    assert results["num_scored"] == 1 and results["num_missing_videos"] == 1

    # Resuming into the same folder with another prompt would mix two runs: refused with one line.
    assert main(argv + ["--prompt", "Describe the face."]) == 2
    err = capsys.readouterr().err
    assert "holds predictions made with" in err and "Traceback" not in err
    assert main(argv[:-1] + ["cpu", "--limit", "0"]) == 2
    assert "--limit must be at least 1" in capsys.readouterr().err


def test_bleu_reads_the_same_tokens_as_cider_so_punctuation_does_not_count(shared_dir):
    """BLEU-4 is coco-caption's Bleu on lower-cased, punctuation-free tokens: an unrelated caption scores the same
    with or without punctuation, and the value equals sacrebleu's corpus BLEU on those tokens."""
    from sacrebleu.metrics import BLEU

    from facetrack.evaluation.caption_metrics import tokenize

    references = [item["caption"] for item in json.loads((shared_dir / "data" / "dfec_test.json").read_text())[:40]]
    unrelated = references[1:] + references[:1]
    stripped = [" ".join(tokenize(text)) for text in unrelated]
    with_punctuation = caption_metrics(unrelated, references)
    without = caption_metrics(stripped, references)
    assert with_punctuation["bleu4"] == pytest.approx(without["bleu4"], abs=1e-12)
    assert with_punctuation["cider"] == pytest.approx(without["cider"], abs=1e-12)
    reference_tokens = [" ".join(tokenize(text)) for text in references]
    sacre = BLEU(tokenize="none").corpus_score(stripped, [reference_tokens]).score / 100
    assert with_punctuation["bleu4"] == pytest.approx(sacre, abs=1e-9)
    assert BLEU().corpus_score(unrelated, [references]).score / 100 > with_punctuation["bleu4"] + 0.02  # what 13a did


# ------------------------------------------------------------------------------------------------ other models
FEW_CLIPS = [
    {"id": "a", "video": "single_face.mp4",
     "caption": "At the beginning of the video, he smiles. Towards the end of the video, he frowns and looks down."},
    {"id": "b", "video": "WolfgangLanger_Pexels.mp4",
     "caption": "At the beginning of the video, she blinks. In the middle of the video, she raises her eyebrows."},
]


@pytest.fixture(scope="module")
def tiny_llava_onevision(tmp_path_factory):
    from facetrack.inference.video_chat_models import build_tiny_llava_onevision

    return build_tiny_llava_onevision(tmp_path_factory.mktemp("tiny-llava-ov"))


def test_eval_runs_another_architecture_through_its_own_classes(tiny_llava_onevision, media_dir, tmp_path, capsys):
    """A tiny LLaVA-OneVision (random weights, saved with save_pretrained): loaded with its own Auto class, tokenizer
    and chat template; without torchvision its video processor cannot load, and the fallback says so."""
    import importlib.util

    annotations = tmp_path / "test.json"
    annotations.write_text(json.dumps(FEW_CLIPS))
    out = tmp_path / "results"
    argv = ["eval", "--model", str(tiny_llava_onevision), "--annotations", str(annotations), "--video-root",
            str(media_dir), "--out", str(out), "--num-frames", "3", "--max-new-tokens", "6", "--device", "cpu",
            "--name", "tiny-llava-ov"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "| **tiny-llava-ov** | n/a | n/a | n/a | n/a | " in captured.out
    results = json.loads((out / "results.json").read_text())
    assert results["num_scored"] == 2
    assert all(isinstance(results["metrics"][key], float) for key in ("cider", "rouge_l", "bleu4", "autodq", "tem"))
    generation = results["generation"]
    assert generation["backend"] == "transformers" and generation["model_type"] == "llava_onevision"
    if importlib.util.find_spec("torchvision") is None:
        assert generation["inputs"] == "fallback preprocessing"
        assert "needs torchvision" in captured.err and "needs torchvision" in (out / "results.md").read_text()
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert sorted(line["id"] for line in lines) == ["a", "b"] and all(isinstance(line["prediction"], str) for line in lines)


def test_llava_onevision_fallback_builds_what_the_model_expects(tiny_llava_onevision, media_dir):
    """The fallback's placeholder count matches the model's video features (the forward pass checks it) and its
    pixels are the frames resized and normalised."""
    import torch

    from facetrack.inference.video_chat_models import LlavaOnevisionFallback, TransformersVideoCaptioner

    captioner = TransformersVideoCaptioner.load(str(tiny_llava_onevision), device="cpu")
    if captioner.fallback is None:
        pytest.skip("torchvision imports here: the model's own processor is used")
    assert isinstance(captioner.fallback, LlavaOnevisionFallback)
    inputs = captioner.build_inputs(str(media_dir / "single_face.mp4"), "Describe the face.", num_frames=4)
    assert inputs["pixel_values_videos"].shape == (1, 4, 3, 32, 32)
    video_token = captioner.model.config.video_token_id
    assert int((inputs["input_ids"] == video_token).sum()) == 4 * 4 + 1  # 4 frames x (4x4 patches pooled to 2x2) + 1
    with torch.inference_mode():
        captioner.model(**inputs)  # raises if placeholders and features disagree
    assert -3.0 < float(inputs["pixel_values_videos"].min()) and float(inputs["pixel_values_videos"].max()) < 3.0


def test_eval_against_an_openai_compatible_endpoint_sends_frames_as_images(media_dir, tmp_path, capsys,
                                                                           fake_chat_server, monkeypatch):
    import base64
    import io

    from PIL import Image

    monkeypatch.setenv("FAKE_KEY", "secret")
    server = fake_chat_server(lambda prompt: "At the beginning of the video, he smiles. Then he looks down.")
    annotations = tmp_path / "test.json"
    annotations.write_text(json.dumps(FEW_CLIPS))
    out = tmp_path / "results"
    argv = ["eval", "--model", "gpt-4o-fake", "--api-base-url", server.url, "--api-key-env", "FAKE_KEY",
            "--annotations", str(annotations), "--video-root", str(media_dir), "--out", str(out), "--num-frames", "3",
            "--image-detail", "low"]
    assert main(argv) == 0
    assert server.images == [3, 3]
    request = server.requests[0]
    assert request["model"] == "gpt-4o-fake" and request["temperature"] == 0
    parts = request["messages"][0]["content"]
    assert parts[0]["type"] == "text" and "facial appearance attributes" in parts[0]["text"]
    assert parts[1]["image_url"]["detail"] == "low"
    frame = Image.open(io.BytesIO(base64.b64decode(parts[1]["image_url"]["url"].split(",", 1)[1])))
    assert frame.size == (640, 360)  # single_face.mp4's frames, under the 768 px cap
    printed = capsys.readouterr().out
    assert "| **gpt-4o-fake** | n/a | n/a | n/a | n/a | " in printed
    results = json.loads((out / "results.json").read_text())
    assert results["num_scored"] == 2 and results["generation"]["backend"] == "openai-compatible"
    assert results["metrics"]["tem"] > 0  # "he smiles" matches clip a's reference
    assert main(argv) == 0 and server.calls == 2  # resumed: nothing captioned twice


def test_eval_endpoint_errors_are_one_line(media_dir, tmp_path, capsys):
    annotations = tmp_path / "test.json"
    annotations.write_text(json.dumps(FEW_CLIPS[:1]))
    code = main(["eval", "--model", "x", "--api-base-url", "http://127.0.0.1:9/v1", "--annotations", str(annotations),
                 "--video-root", str(media_dir), "--out", str(tmp_path / "r")])
    assert code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("facetrack eval: error: could not reach the chat endpoint")


def test_fallback_matches_the_processor_where_torchvision_imports(tiny_llava_onevision, media_dir):
    """Where the real LlavaOnevisionProcessor loads, the fallback gives the same tokens and nearly the same pixels
    (bicubic resizing differs slightly between PIL and torchvision)."""
    pytest.importorskip("torchvision")
    import torch

    from facetrack.inference.video_chat_models import LlavaOnevisionFallback, TransformersVideoCaptioner, sample_frames

    captioner = TransformersVideoCaptioner.load(str(tiny_llava_onevision), device="cpu")
    assert captioner.processor is not None and captioner.fallback is None
    video = str(media_dir / "single_face.mp4")
    primary = captioner.build_inputs(video, "Describe the face.", num_frames=4)
    fallback = LlavaOnevisionFallback(tiny_llava_onevision, captioner.model, captioner.tokenizer).inputs(
        captioner._prompt_text("Describe the face."), sample_frames(video, 4), captioner.model)
    assert torch.equal(primary["input_ids"], fallback["input_ids"])
    assert float((primary["pixel_values_videos"] - fallback["pixel_values_videos"]).abs().max()) < 0.05


def test_another_architecture_without_processor_or_fallback_is_one_clear_line(media_dir, tmp_path, capsys):
    """A Qwen2-VL saved without its processor files (and no torchvision for its video processor here): one line
    naming the model type and the fix, exit code 2."""
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    torch.manual_seed(0)
    config = Qwen2VLConfig(
        text_config={"vocab_size": 300, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "num_key_value_heads": 1, "rope_scaling": {"type": "mrope", "mrope_section": [2, 2, 4]}},
        vision_config={"depth": 1, "embed_dim": 16, "hidden_size": 32, "num_heads": 2, "in_chans": 3, "patch_size": 14,
                       "spatial_merge_size": 2, "temporal_patch_size": 2},
    )
    Qwen2VLForConditionalGeneration(config).save_pretrained(tmp_path / "qwen2vl")
    annotations = tmp_path / "test.json"
    annotations.write_text(json.dumps(FEW_CLIPS[:1]))
    code = main(["eval", "--model", str(tmp_path / "qwen2vl"), "--annotations", str(annotations), "--video-root",
                 str(media_dir), "--out", str(tmp_path / "r"), "--device", "cpu"])
    assert code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "no fallback for model type 'qwen2_vl'" in error and "torchvision" in error
