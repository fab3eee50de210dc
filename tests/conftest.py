"""Shared fixtures. `../shared` (beside the checkout) holds real test media; a user's clone may not have it."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

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
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random FaceTrack-MM (tiny SigLIP + tiny Qwen2, SmolLM2's real tokenizer when installed) saved as a
    complete Hub folder, built once per session."""
    from facetrack.hub import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("facetrack-tiny"), language_model="random", seed=0)


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
