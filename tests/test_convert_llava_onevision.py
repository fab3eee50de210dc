"""`facetrack convert llava-onevision`: a tiny random LLaVA-OneVision built from config here (transformers' own
`LlavaOnevisionForConditionalGeneration`, a locally trained tokenizer, save_pretrained), converted, and compared with
the original: same logits and greedy tokens with face tokens off, LLaVA-OneVision's global path with them on (and with
expression tokens beside them)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import sysconfig
import textwrap

import numpy as np
import pytest
import torch
from expression_tracks import measured_track

from facetrack.commands import cli
from facetrack.hub.convert_llava_onevision import ConversionError, convert_llava_onevision
from facetrack.model.configuration_facetrack import FaceTrackConfigError
from facetrack.model.modeling_facetrack import FaceTrackForConditionalGeneration
from facetrack.faces.track_result import FaceTrackResult
from facetrack.model.processing_facetrack import FaceTrackProcessor

PROMPT = "<|im_start|>user\n<video>\nDescribe the facial expression changes.<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def llava_dir(tiny_llava_onevision_dir):
    return tiny_llava_onevision_dir


@pytest.fixture(scope="module")
def llava(llava_dir):
    from transformers import LlavaOnevisionForConditionalGeneration

    return LlavaOnevisionForConditionalGeneration.from_pretrained(llava_dir).eval()


@pytest.fixture(scope="module")
def converted_without_faces(llava_dir, tmp_path_factory):
    folder = convert_llava_onevision(llava_dir, tmp_path_factory.mktemp("converted") / "no-faces",
                                     face_tokens_per_frame=0)
    return FaceTrackForConditionalGeneration.from_pretrained(folder).eval(), FaceTrackProcessor.from_pretrained(folder)


def frames(num_frames: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(num_frames, 48, 64, 3), dtype=np.uint8)


def llava_pixels(inputs, num_videos: int):
    """FaceTrack's flattened frames -> LLaVA-OneVision's `(videos, frames, 3, S, S)`."""
    pixels = inputs["pixel_values_videos"]
    return pixels.view(num_videos, pixels.shape[0] // num_videos, *pixels.shape[1:])


@pytest.mark.parametrize("num_videos,num_frames", [(2, 3), (1, 2)])
def test_with_face_tokens_off_logits_and_greedy_tokens_are_llava_onevisions(
    llava, llava_dir, converted_without_faces, num_videos, num_frames
):
    model, processor = converted_without_faces
    config = model.config
    assert (config.global_tokens_per_frame, config.face_tokens_per_frame) == (9, 0)
    assert config.video_pooling == "bilinear" and config.projector_before_pooling and config.video_newline
    source_mean = json.loads((llava_dir / "video_preprocessor_config.json").read_text())["image_mean"]
    assert processor.timestamp_template is None and processor.image_mean == pytest.approx(source_mean) != [0.5] * 3

    videos = [frames(num_frames, seed) for seed in range(num_videos)]
    inputs = processor(text=[PROMPT] * num_videos, videos=videos, num_frames=num_frames)
    assert set(inputs) == {"input_ids", "attention_mask", "pixel_values_videos", "video_num_frames"}
    # LLaVA-OneVision's processor rule: frames x ceil(sqrt(patches) / 2)^2 + 1 newline, all <video>.
    per_video = num_frames * math.ceil(math.sqrt(25) / 2) ** 2 + 1
    assert ((inputs["input_ids"] == config.video_token_id).sum(-1) == per_video).all()

    with torch.no_grad():
        reference = llava(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                          pixel_values_videos=llava_pixels(inputs, num_videos)).logits
        logits = model(**inputs).logits
    assert logits.shape == reference.shape
    assert (logits - reference).abs().max() < 1e-4

    settings = dict(max_new_tokens=8, min_new_tokens=8, do_sample=False, pad_token_id=0, eos_token_id=None,
                    suppress_tokens=model.generation_config.suppress_tokens)
    with torch.no_grad():
        expected = llava.generate(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                                  pixel_values_videos=llava_pixels(inputs, num_videos), **settings)
        generated = model.generate(**inputs, **settings)
    assert torch.equal(generated, expected)
    new_tokens = generated[:, inputs["input_ids"].shape[1]:]
    assert all(len(set(row.tolist())) > 1 for row in new_tokens), "degenerate decoding would prove nothing"


def test_with_face_tokens_on_the_global_path_is_llava_onevisions(llava, llava_dir, tmp_path):
    folder = convert_llava_onevision(llava_dir, tmp_path / "faces", face_tokens_per_frame=4)
    model = FaceTrackForConditionalGeneration.from_pretrained(folder).eval()
    processor = FaceTrackProcessor.from_pretrained(folder)
    assert (model.config.face_tokens_per_frame, processor.face_tokens_per_frame) == (4, 4)

    # Every pretrained part is LLaVA-OneVision's; the face projector starts as its projector.
    source = llava.state_dict()
    state = model.state_dict()
    renamed = {"model.video_projector.": "model.multi_modal_projector.", "model.face_projector.":
               "model.multi_modal_projector.", "model.video_newline_embedding": "model.image_newline"}
    for name, tensor in state.items():
        if name == "model.no_face_embedding":
            continue
        source_name = next((name.replace(ours, theirs) for ours, theirs in renamed.items() if name.startswith(ours)),
                           name)
        assert torch.equal(tensor, source[source_name]), name

    video = frames(3, seed=7)
    track = FaceTrackResult.from_boxes([[8.0, 6.0, 40.0, 40.0] if i != 1 else None for i in range(3)], width=64,
                                       height=48, score=0.9, reason="test")
    inputs = processor(text=PROMPT, videos=[video], face_tracks=[track])
    assert int((inputs["input_ids"] == model.config.face_token_id).sum()) == 3 * 4
    with torch.no_grad():
        ours = model.get_video_features(inputs["pixel_values_videos"], inputs["pixel_values_faces"],
                                        inputs["face_mask"], inputs["video_num_frames"])
        theirs = llava.get_video_features(llava_pixels(inputs, 1), return_dict=True).pooler_output
    assert torch.allclose(ours.pooler_output[0], theirs[0], atol=1e-6)
    assert ours.face_features.shape == (3, 4, 64)

    # Training starts from here: the loss reaches the face path.
    model.train()
    labels = inputs["input_ids"].clone()
    model(**inputs, labels=labels).loss.backward()
    assert model.model.face_projector.linear_1.weight.grad.abs().sum() > 0
    assert model.model.no_face_embedding.grad.abs().sum() > 0


def test_expression_tokens_join_llava_onevisions_parts(llava, llava_dir, tmp_path, capsys):
    """`--expression-tokens 2`: every LLaVA-OneVision part unchanged, a fresh expression projector over the installed
    feature set, `<expression>` in the tokenizer, and the stream in the prompt and the model's output."""
    from facetrack.expressions.features import EXPRESSION_FEATURES

    out = tmp_path / "with-expressions"
    assert cli.main(["convert", "llava-onevision", str(llava_dir), str(out), "--face-tokens", "4",
                     "--expression-tokens", "2"]) == 0
    model = FaceTrackForConditionalGeneration.from_pretrained(out).eval()
    processor = FaceTrackProcessor.from_pretrained(out)
    config = model.config
    assert (config.expression_tokens_per_frame, processor.expression_tokens_per_frame) == (2, 2)
    assert config.expression_features == processor.expression_features == EXPRESSION_FEATURES
    assert processor.tokenizer.convert_ids_to_tokens(config.expression_token_id) == "<expression>"
    assert config.expression_token_id in model.generation_config.suppress_tokens
    source = llava.state_dict()
    for name, tensor in model.state_dict().items():
        if name.startswith(("model.vision_tower.", "model.language_model.", "lm_head.")):
            assert torch.equal(tensor, source[name]), name
    assert torch.equal(model.model.video_projector.linear_1.weight, source["model.multi_modal_projector.linear_1.weight"])
    assert model.model.expression_projector.linear_2.weight.shape == (2 * 64, 64)

    boxes = [[8.0, 6.0, 40.0, 40.0] if i != 1 else None for i in range(3)]
    inputs = processor(text=PROMPT, videos=[frames(3, seed=7)], face_tracks=[measured_track(boxes)])
    assert int((inputs["input_ids"] == config.expression_token_id).sum()) == 3 * 2
    with torch.no_grad():
        ours = model.get_video_features(inputs["pixel_values_videos"], video_num_frames=inputs["video_num_frames"])
        theirs = llava.get_video_features(llava_pixels(inputs, 1), return_dict=True).pooler_output
        assert torch.allclose(ours.pooler_output[0], theirs[0], atol=1e-6), "the global path is still LLaVA-OneVision's"
        output = model(**inputs)
        generated = model.generate(**inputs, max_new_tokens=3, min_new_tokens=3, do_sample=False)
    assert output.expression_hidden_states.shape == (3, 2, 64)
    assert generated.shape[1] == inputs["input_ids"].shape[1] + 3
    assert cli.main(["convert", "llava-onevision", str(llava_dir), str(tmp_path / "bad"), "--expression-tokens",
                     "-1"]) == 2
    assert "--expression-tokens must be >= 0" in capsys.readouterr().err


def test_fewer_global_tokens_and_average_pooling(llava_dir, tmp_path):
    folder = convert_llava_onevision(llava_dir, tmp_path / "small", face_tokens_per_frame=1,
                                     global_tokens_per_frame=4, video_pooling="average", timestamps=True)
    model = FaceTrackForConditionalGeneration.from_pretrained(folder).eval()
    processor = FaceTrackProcessor.from_pretrained(folder)
    assert (model.config.global_tokens_per_frame, model.config.video_pooling) == (4, "average")
    inputs = processor(text=PROMPT, videos=[frames(2, 3)], face_tracks=[None], num_frames=2)
    ids = inputs["input_ids"][0]
    assert int((ids == model.config.video_token_id).sum()) == 2 * 4 + 1
    assert processor.decode(ids).count("<t=") == 2
    with torch.no_grad():
        generated = model.generate(**inputs, max_new_tokens=3, min_new_tokens=3, do_sample=False)
    assert generated.shape[1] == ids.shape[0] + 3


# Without facetrack-mm installed: the Hub folder's model loads from its own code; its processor, which runs the
# installed face pipeline, says which package to install.
WITHOUT_FACETRACK = textwrap.dedent(
    """
    import sys
    sys.path.append(SITE_PACKAGES)  # -S: no .pth files, so the editable `facetrack` finder is not installed
    try:
        import facetrack
    except ImportError:
        pass
    else:
        raise SystemExit("facetrack is importable in the isolated interpreter")
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(FOLDER, trust_remote_code=True)
    assert type(model).__module__.startswith("transformers_modules."), type(model).__module__
    try:
        AutoProcessor.from_pretrained(FOLDER, trust_remote_code=True)
    except ImportError as error:
        print("processor:", error)
    """
)

# A fresh process with facetrack-mm installed: model and processor from the folder's code, generation.
FRESH_LOAD = textwrap.dedent(
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(FOLDER, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(FOLDER, trust_remote_code=True)
    messages = [{"role": "user", "content": [{"type": "video", "path": VIDEO}, {"type": "text", "text": "Describe."}]}]
    inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                                           processor_kwargs={"num_frames": 3})
    with torch.no_grad():
        generated = model.generate(**inputs, max_new_tokens=5, min_new_tokens=5, do_sample=False)
    torch.save({"inputs": dict(inputs), "generated": generated, "module": type(model).__module__,
                "processor_module": type(processor).__module__}, OUTPUT)
    """
)


@pytest.mark.slow
def test_cli_converts_and_the_folder_generates_in_a_fresh_process(llava_dir, media_dir, tmp_path, capsys):
    out = tmp_path / "facetrack-from-llava"
    assert cli.main(["convert", "llava-onevision", str(llava_dir), str(out), "--face-tokens", "4"]) == 0
    assert "wrote FaceTrack-MM Hub folder" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "facetrack" and config["video_newline"] is True
    assert {"modeling_facetrack.py", "vision_facetrack.py", "generation_facetrack.py", "processing_facetrack.py",
            "chat_template.jinja", "README.md"} <= {path.name for path in out.iterdir()}

    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "HF_"))}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"), PYTHONNOUSERSITE="1")
    header = (f"SITE_PACKAGES = {sysconfig.get_paths()['purelib']!r}\nFOLDER = {str(out)!r}\n"
              f"VIDEO = {str(media_dir / 'single_face.mp4')!r}\nOUTPUT = {str(tmp_path / 'fresh.pt')!r}\n")
    (tmp_path / "without.py").write_text(header + WITHOUT_FACETRACK)
    result = subprocess.run([sys.executable, "-S", str(tmp_path / "without.py")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "processor: FaceTrack-MM's processor needs the facetrack-mm package: pip install facetrack-mm" in result.stdout

    (tmp_path / "fresh.py").write_text(header + FRESH_LOAD)
    result = subprocess.run([sys.executable, str(tmp_path / "fresh.py")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    fresh = torch.load(tmp_path / "fresh.pt", weights_only=False)
    assert fresh["module"].startswith("transformers_modules.") and fresh["processor_module"].startswith("transformers_modules.")
    assert fresh["inputs"]["face_mask"].sum() >= 2, "the face in single_face.mp4 is tracked"

    model = FaceTrackForConditionalGeneration.from_pretrained(out).eval()
    with torch.no_grad():
        generated = model.generate(**fresh["inputs"], max_new_tokens=5, min_new_tokens=5, do_sample=False)
    assert torch.equal(generated, fresh["generated"])


def test_bad_sources_and_settings_are_clear_errors(llava_dir, tiny_model_dir, tmp_path, capsys):
    with pytest.raises(ConversionError, match="'facetrack' checkpoint, not LLaVA-OneVision"):
        convert_llava_onevision(tiny_model_dir, tmp_path / "a")
    with pytest.raises(FaceTrackConfigError, match="face_tokens_per_frame=5 is not a positive perfect square"):
        convert_llava_onevision(llava_dir, tmp_path / "b", face_tokens_per_frame=5)
    with pytest.raises(FaceTrackConfigError, match=r"global_tokens_per_frame=36 \(6 x 6\) does not fit"):
        convert_llava_onevision(llava_dir, tmp_path / "c", global_tokens_per_frame=36)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    with pytest.raises(ConversionError, match="exists and is not empty"):
        convert_llava_onevision(llava_dir, tmp_path / "full")

    assert cli.main(["convert", "llava-onevision", str(tmp_path / "nowhere"), str(tmp_path / "d")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("facetrack convert: error:") and "Traceback" not in error
    assert cli.main(["convert", "llava-onevision", str(llava_dir), str(tmp_path / "e"), "--face-tokens", "-4"]) == 2
    assert "--face-tokens must be >= 0" in capsys.readouterr().err


def test_the_checkpoints_own_chat_template_on_request(llava_dir, tmp_path):
    import shutil

    with pytest.raises(ConversionError, match="has no chat template"):
        convert_llava_onevision(llava_dir, tmp_path / "none", chat_template="source")
    source = tmp_path / "with-template"
    shutil.copytree(llava_dir, source)
    template = "{% for message in messages %}{{ message['role'] }}: <video>{% endfor %}"
    (source / "chat_template.jinja").write_text(template)
    out = convert_llava_onevision(source, tmp_path / "own", chat_template="source", face_tokens_per_frame=0)
    assert FaceTrackProcessor.from_pretrained(out).chat_template == template
    assert FaceTrackProcessor.from_pretrained(convert_llava_onevision(
        source, tmp_path / "ours", face_tokens_per_frame=0)).chat_template.startswith("{%- for message in messages")
