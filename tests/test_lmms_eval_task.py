"""The lmms-eval task folder lmms_eval_tasks/fec_bench: its yaml uses lmms-eval's task keys, its functions have the
signatures lmms-eval calls them with, and the metrics it aggregates are our TEM / caption metrics; and lmms-eval
itself, installed in its own venv as lmms_eval_tasks/fec_bench/README.md says (`make lmms-eval-venv`), runs
`--model facetrack` on a tiny FaceTrack-MM and two shipped clips and reports our scores of our model's captions.
(lmms-eval asks for packages this project's .venv does not carry, so it is not installed there.)"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from facetrack.evaluation.caption_metrics import caption_metrics
from facetrack.evaluation.tem.metric import load_tem_metric

REPO_ROOT = Path(__file__).resolve().parents[1]
TASK_DIR = REPO_ROOT / "lmms_eval_tasks" / "fec_bench"
# Made by `bash lmms_eval_tasks/setup_lmms_eval_venv.sh` (`make lmms-eval-venv`): ~3 GB, minutes to install.
LMMS_EVAL_VENV = Path(os.environ.get("LMMS_EVAL_VENV", REPO_ROOT / ".venv" / "lmms-eval"))
LMMS_EVAL_CLIPS = ("single_face.mp4", "face_noface.mov")
# lmms-eval 0.7.3's TaskConfig fields (lmms_eval/api/task.py) plus `include`, which its yaml loader resolves.
TASK_CONFIG_KEYS = set(
    "task task_alias tag group group_alias dataset_path dataset_name dataset_kwargs training_split validation_split "
    "test_split fewshot_split full_docs process_results_use_image process_docs doc_to_visual doc_to_text "
    "doc_to_target doc_to_choice doc_to_messages process_results use_prompt description target_delimiter "
    "fewshot_delimiter fewshot_config num_fewshot metric_list output_type generation_kwargs repeats filter_list "
    "should_decontaminate doc_to_decontamination_query cluster_key score_key metadata lmms_eval_specific_kwargs "
    "model_specific_generation_kwargs model_specific_target_kwargs reasoning_tags auto_strip_thinking include".split()
)


class FunctionTag(str):
    """A `!function utils.name` value."""


def load_task_yaml() -> dict:
    loader = type("TaskLoader", (yaml.SafeLoader,), {})
    loader.add_constructor("!function", lambda loader, node: FunctionTag(loader.construct_scalar(node)))
    return yaml.load((TASK_DIR / "fec_bench.yaml").read_text(), Loader=loader)


@pytest.fixture(scope="module")
def utils():
    spec = importlib.util.spec_from_file_location("fec_bench_task_utils", TASK_DIR / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_yaml_uses_lmms_eval_task_keys_and_existing_functions(utils):
    config = load_task_yaml()
    assert set(config) <= TASK_CONFIG_KEYS, set(config) - TASK_CONFIG_KEYS
    assert config["task"] == "fec_bench" and config["output_type"] == "generate_until"
    assert config["dataset_path"] == "json" and config["test_split"] in config["dataset_kwargs"]["data_files"]
    functions = [config[key] for key in ("doc_to_visual", "doc_to_text", "doc_to_target", "process_results")]
    functions += [metric["aggregation"] for metric in config["metric_list"]]
    for tag in functions:
        assert isinstance(tag, FunctionTag) and tag.startswith("utils."), tag
        assert callable(getattr(utils, tag.split(".", 1)[1])), tag
    signature = lambda key: list(inspect.signature(getattr(utils, config[key].split(".", 1)[1])).parameters)  # noqa: E731
    assert signature("doc_to_visual") == ["doc"] and signature("doc_to_target") == ["doc"]
    assert signature("doc_to_text") == ["doc", "lmms_eval_specific_kwargs"]
    assert signature("process_results") == ["doc", "results"]
    metric_names = {metric["metric"] for metric in config["metric_list"]}
    assert metric_names == set(utils.fec_bench_process_results({"id": 1, "caption": "x"}, ["y"]))
    assert all(metric["higher_is_better"] is True for metric in config["metric_list"])


def test_task_functions_on_real_references(utils, shared_dir, media_dir, monkeypatch):
    items = json.loads((shared_dir / "data" / "dfec_test.json").read_text())[:12]
    monkeypatch.setenv("FEC_BENCH_VIDEO_ROOT", str(media_dir))
    assert utils.fec_bench_doc_to_visual({"id": "x", "video": "single_face.mp4"}) == [str(media_dir / "single_face.mp4")]
    with pytest.raises(FileNotFoundError, match="not found under"):
        utils.fec_bench_doc_to_visual(items[0])
    text = utils.fec_bench_doc_to_text(items[0], {"pre_prompt": "", "post_prompt": " Answer in English."})
    assert text.startswith("Please provide a detailed description") and text.endswith(" Answer in English.")
    assert utils.fec_bench_doc_to_target(items[0]) == items[0]["caption"]
    predictions = [item["caption"] for item in items[1:]] + [items[0]["caption"]]
    per_doc = [utils.fec_bench_process_results(item, [prediction]) for item, prediction in zip(items, predictions)]
    aggregated = {metric: getattr(utils, f"fec_bench_aggregate_{metric.removeprefix('tem_')}")(
        [result[metric] for result in per_doc[::-1]]) for metric in ("tem", "autodq", "tem_content_f1", "tem_temporal")}
    ordered = sorted(zip(items, predictions), key=lambda pair: str(pair[0]["id"]))
    expected = load_tem_metric().compute(predictions=[p for _, p in ordered], references=[i["caption"] for i, _ in ordered])
    assert aggregated == {"tem": expected["tem"], "autodq": expected["autodq"], "tem_content_f1": expected["content_f1"],
                          "tem_temporal": expected["temporal"]}
    assert utils.fec_bench_aggregate_cider([r["cider"] for r in per_doc]) == pytest.approx(
        caption_metrics([p for _, p in ordered], [i["caption"] for i, _ in ordered])["cider"])


def test_lmms_eval_reads_the_task_where_it_is_installed():
    lmms_utils = pytest.importorskip("lmms_eval.utils")
    config = lmms_utils.load_yaml_config(str(TASK_DIR / "fec_bench.yaml"))
    assert config["task"] == "fec_bench" and callable(config["process_results"])


@pytest.fixture(scope="module")
def lmms_eval_venv() -> Path:
    """lmms-eval's own venv, with this checkout's facetrack installed into it."""
    if not (LMMS_EVAL_VENV / "bin" / "lmms-eval").is_file():
        pytest.skip(f"lmms-eval is not installed in {LMMS_EVAL_VENV} (its own venv, ~3 GB, a few minutes): make it "
                    "with `make lmms-eval-venv` (bash lmms_eval_tasks/setup_lmms_eval_venv.sh)")
    where = subprocess.run([str(LMMS_EVAL_VENV / "bin" / "python"), "-c",
                            "import facetrack; print(facetrack.__file__)"], capture_output=True, text=True, timeout=120)
    assert where.returncode == 0, where.stderr[-2000:]
    assert Path(where.stdout.strip()).resolve().is_relative_to(REPO_ROOT), (
        f"{LMMS_EVAL_VENV} runs the facetrack of {where.stdout.strip()}, not this checkout's: "
        "run `make lmms-eval-venv`")
    return LMMS_EVAL_VENV


def test_lmms_eval_scores_a_tiny_facetrack_model(lmms_eval_venv, tiny_model_dir, media_dir, tmp_path):
    """`lmms-eval --model facetrack --tasks fec_bench --include_path ...` as the task's README says, on two shipped
    clips: it finishes, its samples hold the captions our Captioner gives for the same clips and settings, and the
    scores it reports are our metrics of those captions."""
    from facetrack.inference.captioner import load_captioner

    task = tmp_path / "fec_bench"
    shutil.copytree(TASK_DIR, task)
    annotations = [item for item in json.loads((media_dir / "annotations.json").read_text())
                   if item["video"] in LMMS_EVAL_CLIPS]
    (task / "dfec_test.json").write_text(json.dumps(annotations))  # "copy dfec_test.json beside fec_bench.yaml"
    command = [
        str(lmms_eval_venv / "bin" / "lmms-eval"), "--model", "facetrack",
        "--model_args", f"pretrained={tiny_model_dir},device=cpu,num_frames=4", "--tasks", "fec_bench",
        "--include_path", str(task), "--batch_size", "2", "--gen_kwargs", "max_new_tokens=12",
        "--output_path", str(tmp_path / "results"), "--log_samples",
    ]
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("VIRTUAL_ENV", "PYTHON"))}
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                            env={**environment, "FEC_BENCH_VIDEO_ROOT": str(media_dir), "HF_HUB_OFFLINE": "1"})
    # lmms-eval exits 0 even when the evaluation failed: the results file is the proof.
    results_files = list((tmp_path / "results").rglob("*_results.json"))
    assert result.returncode == 0 and len(results_files) == 1, (result.stdout + result.stderr)[-4000:]
    scores = {key.split(",")[0]: value for key, value in json.loads(results_files[0].read_text())["results"][
        "fec_bench"].items() if key.endswith(",none") and "stderr" not in key}
    assert set(scores) == {"tem", "autodq", "tem_content_f1", "tem_temporal", "cider", "rouge_l", "bleu4"}

    samples = [json.loads(line) for path in (tmp_path / "results").rglob("*_samples_fec_bench.jsonl")
               for line in path.read_text().splitlines()]
    by_id = {sample["tem"]["id"]: sample["tem"]["prediction"] for sample in samples}
    assert sorted(by_id) == sorted(item["id"] for item in annotations)
    captioner = load_captioner(str(tiny_model_dir), device="cpu")
    videos = [str(media_dir / item["video"]) for item in annotations]
    expected, _ = captioner.generate_captions(videos, num_frames=4, max_new_tokens=12)
    assert [by_id[item["id"]] for item in annotations] == expected

    ordered = sorted(annotations, key=lambda item: item["id"])
    predictions, references = [by_id[item["id"]] for item in ordered], [item["caption"] for item in ordered]
    ours = load_tem_metric().compute(predictions=predictions, references=references)
    assert scores["tem"] == pytest.approx(ours["tem"]) and scores["autodq"] == pytest.approx(ours["autodq"])
    captions = caption_metrics(predictions, references)
    assert scores["rouge_l"] == pytest.approx(captions["rouge_l"])
    assert scores["cider"] == pytest.approx(captions["cider"])
