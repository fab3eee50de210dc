"""The lmms-eval task folder lmms_eval_tasks/fec_bench: its yaml uses lmms-eval's task keys, its functions have the
signatures lmms-eval calls them with, and the metrics it aggregates are our TEM / caption metrics. (lmms-eval itself
pins packages this project cannot share, so it is not installed here; the task was run with lmms-eval 0.7.3 in a
separate venv: see lmms_eval_tasks/fec_bench/README.md.)"""

from __future__ import annotations

import importlib.util
import inspect
import json
from pathlib import Path

import pytest
import yaml

from facetrack.evaluation.caption_metrics import caption_metrics
from facetrack.evaluation.tem.metric import load_tem_metric

TASK_DIR = Path(__file__).resolve().parents[1] / "lmms_eval_tasks" / "fec_bench"
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
