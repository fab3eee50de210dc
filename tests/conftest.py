"""Shared fixtures. `../shared` (beside the checkout) holds real test media; a user's clone may not have it."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from person_clips import person_clips  # noqa: F401  (two-person test clips with ground truth, built once per session)
from video_files import make_bad_files

# Tests never reach the Hub: everything they load is built locally or shipped in a pip package.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("FACETRACK_SHARED_DIR", REPO_ROOT.parent / "shared"))
# The real test clips ship with the repo (tests/media/README.md says where they come from), so a plain clone runs
# the same media tests as CI.
MEDIA_DIR = REPO_ROOT / "tests" / "media"


@pytest.fixture(scope="session")
def media_dir() -> Path:
    return MEDIA_DIR


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED_DIR.is_dir():
        pytest.skip(f"shared folder not found at {SHARED_DIR} (set FACETRACK_SHARED_DIR)")
    return SHARED_DIR


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory, media_dir) -> dict[str, tuple[Path, str]]:
    """One broken input of every kind (`video_files.BAD_CASES`): name -> (path, a word its error must contain)."""
    return make_bad_files(tmp_path_factory.mktemp("bad_videos"), media_dir)


# Not SigLIP's 0.5: the LLaVA-OneVision converter must carry the checkpoint's own normalisation over.
CLIP_MEAN, CLIP_STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]


@pytest.fixture(scope="session")
def tiny_llava_onevision_dir(tmp_path_factory) -> Path:
    """A tiny random LLaVA-OneVision checkpoint: SigLIP 40 px / 8 px patches (a 5 x 5 grid, odd like SigLIP-384's
    27 x 27, so LLaVA-OneVision's ceil(5 / 2) = 3 rounding is exercised), a 2-layer Qwen2 with tied embeddings."""
    import torch
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration, Qwen2Config, SiglipVisionConfig

    from facetrack.hub.tokenizers import train_tiny_tokenizer

    folder = tmp_path_factory.mktemp("llava-onevision-tiny")
    tokenizer = train_tiny_tokenizer()
    tokenizer.add_tokens(["<image>", "<video>"], special_tokens=True)
    vision = SiglipVisionConfig(image_size=40, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                                num_attention_heads=2, vision_use_head=False)
    # Spare embedding rows, as Qwen2 checkpoints have: <face> fits without resizing. A wide init makes greedy
    # decoding pick varied tokens, so "same tokens" can fail.
    text = Qwen2Config(vocab_size=len(tokenizer) + 16, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True, initializer_range=0.2)
    config = LlavaOnevisionConfig(
        vision_config=vision.to_dict(), text_config=text.to_dict(),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        video_token_index=tokenizer.convert_tokens_to_ids("<video>"),
        vision_feature_layer=-2, vision_feature_select_strategy="full", tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = LlavaOnevisionForConditionalGeneration(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "video_preprocessor_config.json").write_text(json.dumps({"image_mean": CLIP_MEAN, "image_std": CLIP_STD}))
    return folder


@pytest.fixture(scope="session")
def fec_bench_annotations() -> Path:
    """FDA/DFEC-format annotations: the real FEC-Bench test set beside a developer checkout, else eight hand-written
    items shipped in tests/data (so a plain clone runs the same checks)."""
    real = SHARED_DIR / "data" / "dfec_test.json"
    return real if real.is_file() else REPO_ROOT / "tests" / "data" / "fda_style_annotations.json"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random FaceTrack-MM (tiny SigLIP + tiny Qwen2, SmolLM2's real tokenizer when installed) saved as a
    complete Hub folder, built once per session."""
    from facetrack.hub.builders import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("facetrack-tiny"), language_model="random", seed=0)


@pytest.fixture(scope="session")
def tiny_stream_model_dir(tmp_path_factory) -> Path:
    """`tiny_model_dir`'s kind of model with the expression stream beside its global and face tokens (4 + 4 + 2 per
    frame), built once per session."""
    from facetrack.hub.builders import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("facetrack-tiny-stream"), language_model="random", seed=0,
                            expression_tokens_per_frame=2)


@pytest.fixture(scope="session")
def tiny_expression_model_dir(tmp_path_factory) -> Path:
    """A tiny model that reads expression tokens only (2 per frame): no vision tower, a tiny random Qwen2 + the
    expression projector; built once per session."""
    from facetrack.hub.builders import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("facetrack-tiny-expressions"), language_model="random", seed=0,
                            global_tokens_per_frame=0, face_tokens_per_frame=0, expression_tokens_per_frame=2)


class FakeChatServer:
    """A local OpenAI-compatible chat-completions endpoint on 127.0.0.1: `answer(prompt)` gives the reply to the
    first message's content (for content given as parts, the text of its text parts; its `image_url` parts must be
    base64 data URLs and are counted in `images`); `calls` counts the requests answered, `requests` keeps them."""

    def __init__(self, answer: Callable[[str], str]):
        self.calls = 0
        self.requests: list[dict] = []
        self.images: list[int] = []  # image parts per request
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.calls += 1
                server.requests.append(body)
                content = body["messages"][0]["content"]
                if isinstance(content, list):
                    images = [part["image_url"]["url"] for part in content if part["type"] == "image_url"]
                    assert all(url.startswith("data:image/jpeg;base64,") for url in images), "not a data URL"
                    server.images.append(len(images))
                    content = "\n".join(part["text"] for part in content if part["type"] == "text")
                reply = answer(content)
                payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def fake_chat_server():
    """Factory: `fake_chat_server(answer)` starts a `FakeChatServer`; every one started is shut down afterwards."""
    servers: list[FakeChatServer] = []

    def start(answer: Callable[[str], str]) -> FakeChatServer:
        servers.append(FakeChatServer(answer))
        return servers[-1]

    yield start
    for server in servers:
        server.httpd.shutdown()


def write_huge_video(path: Path, side: int = 8192, num_frames: int = 1) -> Path:
    """An H.264 mp4 of `side` x `side` black frames: ~200 KB on disk, ~100 MB per decoded frame."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24, options={"preset": "ultrafast"})
        stream.width = stream.height = side
        stream.pix_fmt = "yuv420p"
        for _ in range(num_frames):
            for packet in stream.encode(av.VideoFrame(side, side, "yuv420p")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@pytest.fixture(scope="session")
def huge_video(tmp_path_factory) -> Path:
    """An 8192 x 8192 H.264 clip (198 KB): small enough for any upload limit, 67 megapixels per frame."""
    return write_huge_video(tmp_path_factory.mktemp("huge") / "huge_8192.mp4")
