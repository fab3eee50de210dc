"""The Gradio Space (space/app.py and its modules): driven in headless Chromium (Playwright) and through gradio_client.

The browser tests need Debian's chromium at /usr/bin/chromium (`apt-get install chromium`; Playwright's own
browser download does not work offline) and skip with that reason where it is absent.

(One file for the Space on purpose: its tests share the served demos, the tiny caption model and the model's own
caption, each built once per module.)
"""

from __future__ import annotations

import importlib
import importlib.util
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from facetrack.expressions.models import missing_expression_dependencies
from video_files import encode_video

REPO_ROOT = Path(__file__).resolve().parents[1]
SPACE_DIR = REPO_ROOT / "space"
APP_PATH = SPACE_DIR / "app.py"
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
NUM_FRAMES = 16
MAX_NEW_TOKENS = 64
TRACK_TIMEOUT_MS = 60_000


def space_module(name: str):
    """One of the Space's modules. The Space folder is not a package: its modules import each other as top-level
    modules (as in the Space's repository, where they sit beside app.py), so the folder goes on sys.path."""
    if str(SPACE_DIR) not in sys.path:
        sys.path.insert(0, str(SPACE_DIR))
    return importlib.import_module(name)


def load_space_app():
    """Import space/app.py as a module (by path: `app` is too common a name to import it by)."""
    space_module("space_config")  # puts the folder on sys.path for app.py's own imports
    if "facetrack_space_app" in sys.modules:
        return sys.modules["facetrack_space_app"]
    spec = importlib.util.spec_from_file_location("facetrack_space_app", APP_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["facetrack_space_app"] = module
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(demo) -> Iterator[str]:
    """Serve `demo` on a free localhost port in this process; yield its URL."""
    app = load_space_app()
    _, url, _ = app.launch_demo(
        demo, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True
    )
    try:
        yield url
    finally:
        demo.close()


@pytest.fixture(scope="module")
def space_app():
    return load_space_app()


@pytest.fixture(scope="module")
def space_config():
    return space_module("space_config")


@pytest.fixture(scope="module")
def space_tracking():
    return space_module("space_tracking")


@pytest.fixture(scope="module")
def space_caption():
    return space_module("space_caption")


@pytest.fixture(scope="module")
def tem_ui():
    from facetrack.evaluation.tem import scoring_ui

    return scoring_ui


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium) for the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def upload(page, path: Path) -> None:
    page.locator("#video-input input[type=file]").set_input_files(str(path))


def error_toast_text(page, containing: str, timeout_ms: int = 30_000) -> str:
    """The text of the error toast that mentions `containing` (the browser may show its own toasts too)."""
    toast = page.locator(".toast-body", has_text=containing).first
    toast.wait_for(state="visible", timeout=timeout_ms)
    return toast.inner_text()


# ------------------------------------------------------------------------------------------------ without a browser
def test_check_upload_rejects_non_video_and_limits(space_config, media_dir, tmp_path):
    config = space_config.DemoConfig(max_duration_s=1.0, max_file_mb=100.0, work_dir=tmp_path)
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is a text file, not a video\n" * 20)
    with pytest.raises(space_config.VideoRejected, match="not a readable video"):
        space_config.check_upload(fake, config)
    with pytest.raises(space_config.VideoRejected, match="not a video file"):
        space_config.check_upload(media_dir / "single_face.jpg", config)
    with pytest.raises(space_config.VideoRejected, match=r"2\.\d s long.*up to 1 s"):
        space_config.check_upload(media_dir / "single_face.mp4", config)
    small = space_config.DemoConfig(max_file_mb=0.01, work_dir=tmp_path)
    with pytest.raises(space_config.VideoRejected, match="up to 0.01 MB"):
        space_config.check_upload(media_dir / "single_face.mp4", small)
    relaxed = space_config.DemoConfig(work_dir=tmp_path)
    assert space_config.check_upload(media_dir / "single_face.mp4", relaxed)[1] == pytest.approx(72 / 30, abs=0.1)


def _server_copy(tmp_path: Path, source: Path | bytes, name: str) -> Path:
    """An upload as Gradio stores it: deep in a server-side temp folder, under the user's file name."""
    folder = tmp_path / "gradio_tmp" / "829a0f7c1b2e"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(source if isinstance(source, bytes) else source.read_bytes())
    return path


def _assert_for_the_user(message: str, path: Path) -> None:
    assert f"'{path.name}'" in message, message
    assert "gradio_tmp" not in message and str(path.parent) not in message, message  # no server path
    assert "decord" not in message.lower() and "DECORD" not in message and ".cc:" not in message, message


def test_check_upload_refuses_huge_frames_truncated_and_missing_files_by_name(space_config, space_tracking, huge_video,
                                                                            media_dir, tmp_path, monkeypatch):
    config = space_config.DemoConfig(work_dir=tmp_path)
    huge = _server_copy(tmp_path, huge_video, "tiny_but_huge.mp4")
    with pytest.raises(space_config.VideoRejected) as caught:
        space_config.check_upload(huge, config)
    assert "8192x8192 frames" in str(caught.value) and "8.8 megapixels" in str(caught.value)
    _assert_for_the_user(str(caught.value), huge)

    # A faststart mp4 cut after 3 of its 72 frames: header intact, data gone.
    import av

    faststart = tmp_path / "faststart.mp4"
    with av.open(str(media_dir / "single_face.mp4")) as source, \
            av.open(str(faststart), "w", options={"movflags": "+faststart"}) as target:
        stream = target.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                target.mux(packet)
    with av.open(str(faststart)) as container:
        ends = [p.pos + p.size for p in container.demux(container.streams.video[0]) if p.size]
    cut = _server_copy(tmp_path, faststart.read_bytes()[: ends[2]], "download_cut_short.mp4")
    with pytest.raises(space_config.VideoRejected, match="truncated: its header lists 72 frames") as caught:
        space_config.check_upload(cut, config)
    _assert_for_the_user(str(caught.value), cut)
    # Decoding it anyway (the tracking step, with the upload check out of the way) says the same, by name.
    monkeypatch.setattr(space_tracking, "check_upload", lambda path, config: (None, None))
    with pytest.raises(space_config.VideoRejected, match="truncated") as caught:
        space_tracking.track_video(str(cut), space_config.DemoConfig(work_dir=tmp_path), None, lambda *a, **k: None)
    _assert_for_the_user(str(caught.value), cut)

    garbled = bytearray((media_dir / "single_face.mp4").read_bytes())
    for i in range(5000, len(garbled) - 5000, 7):
        garbled[i] = (garbled[i] * 31 + 7) % 256
    corrupt = _server_copy(tmp_path, bytes(garbled), "corrupt.mp4")
    with pytest.raises(space_config.VideoRejected) as caught:
        space_tracking.track_video(str(corrupt), config, None, lambda *a, **k: None)
    _assert_for_the_user(str(caught.value), corrupt)

    monkeypatch.undo()
    with pytest.raises(space_config.VideoRejected, match="could not be found"):  # not a bare FileNotFoundError
        space_config.check_upload(tmp_path / "gone.mp4", config)


def test_an_upload_is_probed_once(space_config, space_tracking, media_dir, tmp_path, monkeypatch):
    """The upload check's probe of the file is handed on to decoding: the header is read once."""
    from facetrack.video import decode, probe

    probed = []
    real_probe = probe.probe_video

    def counting_probe(path, *args, **kwargs):
        probed.append(Path(path).name)
        return real_probe(path, *args, **kwargs)

    monkeypatch.setattr(probe, "probe_video", counting_probe)
    monkeypatch.setattr(decode, "probe_video", counting_probe)
    config = space_config.DemoConfig(work_dir=tmp_path, num_frames=4)
    outputs = space_tracking.track_video(str(media_dir / "single_face.mp4"), config, None, lambda *a, **k: None)
    assert probed == ["single_face.mp4"]
    assert len(outputs.analysis.clip) == 4


def test_raw_h264_upload_is_read_and_its_length_counted(space_config, tmp_path):
    """A raw H.264 stream saved as .mp4 (no container, no duration in any header): read, and its duration taken
    from its frame count, so the duration limit still holds."""
    path = tmp_path / "long_raw_as.mp4"
    frames = np.stack([np.full((64, 64, 3), 8 * i, dtype=np.uint8) for i in range(30)])
    encode_video(path, frames, container_format="h264")
    assert space_config.check_upload(path, space_config.DemoConfig(work_dir=tmp_path))[1] == pytest.approx(3.0)
    with pytest.raises(space_config.VideoRejected, match=r"3\.0 s long; this demo accepts videos up to 2 s"):
        space_config.check_upload(path, space_config.DemoConfig(max_duration_s=2.0, work_dir=tmp_path))


def test_an_mkv_at_one_frame_per_second_is_tracked_not_called_truncated(space_config, space_tracking, tmp_path):
    """H.264 in mkv at 1 fps without B-frames (`ffmpeg -r 1 -bf 0`): decord times none of its frames; it was refused
    as "truncated: its header says 10.00 s but the data ends after 0.00 s"."""
    from video_files import ffmpeg_encode

    path = ffmpeg_encode(tmp_path / "slides.mkv", np.zeros((10, 64, 64, 3), dtype=np.uint8), "1")
    config = space_config.DemoConfig(num_frames=4, work_dir=tmp_path)
    assert space_config.check_upload(path, config)[1] == pytest.approx(10.0)
    outputs = space_tracking.track_video(str(path), config, None, lambda *a, **k: None)
    assert outputs.analysis.clip.timestamps == [0.0, 3.0, 6.0, 9.0]


def test_examples_fall_back_to_the_repository_test_clips(space_config, tmp_path, monkeypatch):
    monkeypatch.setattr(space_config, "EXAMPLE_MEDIA_DIRS",
                        (tmp_path / "no_shared_here", REPO_ROOT / "tests" / "media"))
    paths, labels = space_config.example_videos(space_config.DemoConfig(work_dir=tmp_path))
    assert [Path(path).name for path in paths[:3]] == list(space_config.SHARED_EXAMPLES)
    assert all(Path(path).parent == REPO_ROOT / "tests" / "media" for path in paths[:3])
    assert labels[-1] == "astronaut (synthetic zoom)"


def readme_api_snippet() -> str:
    """The Python block of space/README.md's API section, as users copy it."""
    section = (SPACE_DIR / "README.md").read_text().split("\n## API\n", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def unpacked_names(snippet: str) -> dict[str, list[str]]:
    """{api_name: the names the snippet unpacks that endpoint's outputs into}."""
    import ast

    names = {}
    for node in ast.walk(ast.parse(snippet)):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            for keyword in node.value.keywords:
                if keyword.arg == "api_name":
                    target = node.targets[0]
                    names[keyword.value.value] = [e.id for e in target.elts] if isinstance(target, ast.Tuple) \
                        else [target.id]
    return names


def test_every_api_output_has_a_name_and_the_readme_unpacks_them_all(space_app, tiny_model_dir):
    """/track returned 7 values of which the README unpacked 4, and two were named value_18 and value_10."""
    from gradio_client.utils import sanitize_parameter_names

    readme = unpacked_names(readme_api_snippet())
    for demo in (space_app.build_demo(model_path="", num_frames=4),
                 space_app.build_demo(model_path=str(tiny_model_dir), num_frames=4)):
        endpoints = demo.get_api_info()["named_endpoints"]
        for api_name, endpoint in endpoints.items():
            names = [sanitize_parameter_names(output["label"]) for output in endpoint["returns"]]
            assert not [name for name in names if name.startswith("value_")], (api_name, names)
            assert len(readme[api_name]) == len(names), (api_name, names)
            if api_name in ("/track", "/caption"):
                assert readme[api_name] == names
    assert set(endpoints) == set(readme) == {"/track", "/caption", "/score_caption"}


def test_the_caption_model_is_named_readably(space_app, tmp_path):
    """A local folder called "model" was announced as "Caption generated by the model model"."""
    (tmp_path / "run-3" / "model").mkdir(parents=True)
    assert space_app.model_name(str(tmp_path / "run-3" / "model")) == "run-3/model"
    assert space_app.model_name("org/facetrack-mm-7b") == "org/facetrack-mm-7b"


def test_bad_model_setting_is_a_clear_error(space_caption):
    with pytest.raises(space_caption.CaptionModelError, match="neither an existing folder nor a Hub id"):
        space_caption.CaptionModel("/no/such/model/folder")


@pytest.mark.slow
def test_the_demo_command_serves_the_endpoints():
    """`python space/app.py` (what `make demo` runs) starts a server; without a model it has no caption endpoint."""
    import json
    import os
    import signal
    import subprocess
    import urllib.request

    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "FACETRACK_MODEL": ""}
    process = subprocess.Popen(
        [sys.executable, str(APP_PATH), "--host", "127.0.0.1"], env=env, cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/gradio_api/info", timeout=5) as response:
                    endpoints = set(json.load(response)["named_endpoints"])
                break
            except OSError:
                if process.poll() is not None:
                    pytest.fail(f"space/app.py exited with {process.returncode}: {process.stderr.read()[-2000:]}")
                if time.monotonic() > deadline:
                    pytest.fail("space/app.py did not start serving within 90 s")
                time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C: the app shuts down cleanly and removes its temp folder
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert endpoints == {"/track", "/score_caption"}


# --------------------------------------------------------------------------------------------------- in the browser
@pytest.mark.browser
def test_browser_shows_readable_errors(space_app, browser, media_dir, tmp_path):
    demo = space_app.build_demo(model_path="", num_frames=NUM_FRAMES, max_duration_s=1.0)
    fake = tmp_path / "not_a_video.mp4"
    fake.write_text("just text pretending to be a video\n" * 50)
    with serving(demo) as url:
        page = browser.new_page()
        page.goto(url)
        assert "No caption model configured" in page.locator("#no-model-message").inner_text()
        assert page.locator("#caption").count() == 0  # no caption box at all, so never a fake caption
        # Only the app's own files are served: not its source, not system files.
        for path in (APP_PATH, Path("/etc/passwd")):
            assert page.request.get(f"{url}/gradio_api/file={path}").status in (403, 404)

        upload(page, fake)
        message = error_toast_text(page, "not_a_video.mp4")
        assert "not_a_video.mp4" in message and "not a readable video" in message

        page.reload()
        upload(page, media_dir / "single_face.mp4")
        message = error_toast_text(page, "single_face.mp4")
        assert "single_face.mp4" in message and "up to 1 s" in message
        page.close()


# ---------------------------------------------------------------------------------- end to end, with a tiny model
def record_caption_values(page) -> None:
    """Record, inside the page, every distinct value the caption box takes (polling every 10 ms), so a fast
    stream is seen whole however busy the test is."""
    page.evaluate(
        """() => {
            window.captionValues = [];
            setInterval(() => {
                const box = document.querySelector('#caption textarea');
                const values = window.captionValues;
                if (box && box.value && box.value !== values[values.length - 1]) values.push(box.value);
            }, 10);
        }"""
    )


def wait_for_stable_caption(page, timeout_s: float = 90, quiet_s: float = 3) -> list[str]:
    """The recorded caption values once none has been added for `quiet_s` seconds (or at the timeout)."""
    deadline = time.monotonic() + timeout_s
    count, last_change = 0, time.monotonic()
    while time.monotonic() < deadline:
        values = page.evaluate("() => window.captionValues")
        if len(values) != count:
            count, last_change = len(values), time.monotonic()
        elif count and time.monotonic() - last_change > quiet_s:
            break
        time.sleep(0.1)
    return page.evaluate("() => window.captionValues")


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> Path:
    from facetrack.hub.builders import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-facetrack"))


@pytest.fixture(scope="module")
def captioning_demo_url(space_app, tiny_model_dir) -> Iterator[str]:
    demo = space_app.build_demo(model_path=str(tiny_model_dir), num_frames=NUM_FRAMES, max_new_tokens=MAX_NEW_TOKENS)
    with serving(demo) as url:
        yield url


@pytest.fixture(scope="module")
def expected_track(media_dir):
    """What the analysis pipeline itself finds in the test clip with the demo's frame count and decode size."""
    from facetrack.analysis.video_analysis import analyze_video

    analysis = analyze_video(media_dir / "single_face.mp4", num_frames=NUM_FRAMES, max_side=1920)
    clip, result = analysis.clip, analysis.track
    present = np.flatnonzero(result.present)
    assert len(present) > 0, "the tracker found no face in single_face.mp4: the demo test would be meaningless"
    return {"count": len(present), "captions": [f"{clip.timestamps[i]:.2f} s" for i in present], "result": result,
            "analysis": analysis}


@pytest.fixture(scope="module")
def model_caption(space_caption, tiny_model_dir, media_dir, expected_track) -> str:
    """The tiny model's own greedy caption of the test clip, from the same frames and face track as the demo's."""
    model = space_caption.CaptionModel(str(tiny_model_dir), max_new_tokens=MAX_NEW_TOKENS)
    *_, caption = model.stream(str(media_dir / "single_face.mp4"), expected_track["analysis"])
    assert caption.strip(), "the tiny model generated an empty caption"
    # Handed the page's analysis, the model sees what it would see decoding and tracking the file itself.
    pieces, _ = model.captioner.stream_caption(str(media_dir / "single_face.mp4"), num_frames=NUM_FRAMES,
                                               max_new_tokens=MAX_NEW_TOKENS)
    assert "".join(pieces) == caption
    return caption


@pytest.mark.slow
def test_the_caption_step_decodes_and_tracks_nothing_again(space_caption, tiny_model_dir, media_dir, expected_track,
                                                          model_caption, monkeypatch):
    """Handed the page's analysis, the caption model's processor (the folder's remote code, running the installed
    face pipeline) neither decodes, nor probes, nor detects: the clip and its track go straight to the pixels."""
    model = space_caption.CaptionModel(str(tiny_model_dir), max_new_tokens=MAX_NEW_TOKENS)
    processor = model.captioner.processor
    package = type(processor).__module__.rsplit(".", 1)[0]
    assert package.startswith("transformers_modules")

    def no_decoding(*args, **kwargs):
        raise AssertionError("the caption step must not decode, probe or detect again")

    for module, name in (("facetrack.analysis.video_analysis", "load_video"), ("facetrack.video.decode", "probe_video"),
                         ("facetrack.video.probe", "probe_video"), (f"{package}.video_processing_facetrack", "load_video")):
        monkeypatch.setattr(sys.modules[module], name, no_decoding)
    monkeypatch.setattr(processor, "_face_tracker", type("NoTracker", (), {"track": no_decoding})())
    *_, caption = model.stream(str(media_dir / "single_face.mp4"), expected_track["analysis"])
    assert caption == model_caption


def measured_caption_shown(page) -> str:
    """The measured-caption box's text, once it is filled."""
    box = page.locator("#measured-caption textarea")
    page.wait_for_function("() => document.querySelector('#measured-caption textarea')?.value.length > 0",
                           timeout=TRACK_TIMEOUT_MS)
    return box.input_value()


@pytest.mark.slow
@pytest.mark.browser
def test_browser_end_to_end_with_streamed_caption(
    browser, captioning_demo_url, media_dir, expected_track, model_caption, tiny_model_dir
):
    page = browser.new_page(viewport={"width": 1280, "height": 1500})
    page.goto(captioning_demo_url)
    record_caption_values(page)
    upload(page, media_dir / "single_face.mp4")

    # The crop strip: one crop per sampled frame where the tracker saw the main face, captioned with its time.
    crops = page.locator("#face-crops .thumbnail-item")
    crops.first.wait_for(timeout=TRACK_TIMEOUT_MS)
    assert crops.count() == expected_track["count"], page.locator("#face-crops").inner_text()
    assert page.locator("#face-crops .caption-label").all_inner_texts() == expected_track["captions"]
    # The annotated video is served by the app, and the presence plot is drawn.
    video_src = page.locator("#annotated-video video").get_attribute("src")
    assert video_src and "/gradio_api/file=" in video_src and video_src.endswith(".mp4")
    page.locator("#presence-plot svg.marks").wait_for(timeout=TRACK_TIMEOUT_MS)
    assert "Main character: person" in page.locator("#track-summary").inner_text()
    assert page.locator("#people .thumbnail-item").count() == 1  # one person to pick from
    # The measured description, labelled as measured, beside the model's caption; the expression timeline plot
    # under the crop strip.
    measured = measured_caption_shown(page)
    expected_measured = expected_track["analysis"].measured_caption
    if expected_track["analysis"].expression_problem is None:
        assert measured == expected_measured and measured.startswith("Measured description")
        plot = page.locator("#expression-plot img")
        plot.wait_for(state="visible", timeout=TRACK_TIMEOUT_MS)
        assert plot.bounding_box()["height"] > 200
        below_crops = page.locator("#face-crops").bounding_box()
        assert plot.bounding_box()["y"] > below_crops["y"] + below_crops["height"] - 1
    else:
        assert measured.startswith("No measured description here: the expression timeline needs")
    assert "not by a language model" in page.locator("#measured-caption").inner_text()
    caption_block = page.locator("#caption").inner_text()
    assert "Model caption" in caption_block and f"{tiny_model_dir.parent.name}/{tiny_model_dir.name}" in caption_block
    # What the model is, from its card, beside its captions (the tiny test model's: a demonstration warning).
    assert "Warning: a demonstration model" in page.locator("#model-notice").inner_text()

    # The caption is the model's own (greedy, same frames and track), built up in steps that only ever extend it.
    # (How many steps the page shows depends on how the browser batches the stream; the API test counts them.)
    observed = wait_for_stable_caption(page)
    assert observed and observed[-1] == model_caption, f"the page shows {observed[-1:]!r}, the model says {model_caption!r}"
    for earlier, later in zip(observed, observed[1:]):
        assert later.startswith(earlier) and len(later) > len(earlier), f"the caption did not grow: {observed!r}"

    ARTIFACTS_DIR.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS_DIR / "space.png"), full_page=True)

    # The TEM tab scores either caption: each button fills the box to score, and the score is the metric's.
    import evaluate

    metric = evaluate.load(str(REPO_ROOT / "evaluate_metric" / "tem"))
    page.get_by_role("tab", name="Score a caption (TEM)").click()
    page.locator("#tem-reference textarea").fill(REFERENCE)
    for button, caption in (("#tem-use-measured", measured), ("#tem-use-model", model_caption)):
        page.locator(button).click()
        page.wait_for_function("(text) => document.querySelector('#tem-prediction textarea').value === text",
                               arg=caption, timeout=10_000)
        expected = metric.compute(predictions=[caption], references=[REFERENCE], return_per_sample=True)
        events = expected["per_sample"][0]["num_prediction_events"]
        page.locator("#tem-score").click()
        page.locator("#tem-summary", has_text=f"TEM {expected['tem']:.3f}").filter(
            has_text=f"Content: {events} predicted").wait_for(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS_DIR / "space-tem-measured-and-model.png"), full_page=True)
    page.close()


# The reference of the single_face.mp4 clip (facetrack.quickstart's hand-written caption).
REFERENCE = (
    "This video shows the changing facial expressions of a young man. At the beginning, his face is neutral and his "
    "lips are closed. As the video progresses, the corners of his mouth rise. In the middle, he smiles broadly, "
    "showing his teeth. Towards the end, his smile fades."
)


@pytest.mark.slow
def test_gradio_client_calls_the_same_endpoints(captioning_demo_url, media_dir, expected_track):
    from gradio_client import Client, handle_file

    client = Client(captioning_demo_url, verbose=False)
    api = client.view_api(print_info=False, return_format="dict")
    assert {"/track", "/caption"} <= set(api["named_endpoints"])

    video, crops, plot, summary, people, expression_plot, measured = client.predict(
        handle_file(str(media_dir / "single_face.mp4")), api_name="/track")
    assert measured == (expected_track["analysis"].measured_caption or measured)
    assert measured.startswith(("Measured description", "No measured description here"))
    assert Path(video).suffix == ".mp4" and Path(video).stat().st_size > 1000
    assert [item["caption"] for item in crops] == expected_track["captions"]
    assert "Main character: person" in summary
    assert [item["caption"] for item in people] == ["person 1 · main"]
    # The presence plot: the main track has one point per sampled frame, above 0 exactly where the face is present.
    main_rows = [row for row in plot["data"] if row[plot["columns"].index("track")].startswith("main character")]
    assert len(main_rows) == NUM_FRAMES
    assert sum(row[plot["columns"].index("face_height_pct")] > 0 for row in main_rows) == expected_track["count"]

    # The caption endpoint streams: every yielded value extends the previous one.
    job = client.submit(handle_file(str(media_dir / "single_face.mp4")), api_name="/caption")
    final = job.result(timeout=120)
    streamed = [value for value in job.outputs() if value]
    assert isinstance(final, str) and final.strip(), "the model produced no caption"
    assert len(streamed) >= 2 and streamed[-1] == final, f"the caption was not streamed: {streamed!r}"
    for earlier, later in zip(streamed, streamed[1:]):
        assert later.startswith(earlier) and len(later) > len(earlier), f"the caption did not grow: {streamed!r}"


@pytest.mark.slow
def test_the_readme_api_snippet_runs_against_the_app(captioning_demo_url, media_dir, expected_track):
    """space/README.md's API snippet, run as written (the server address and the clip's name filled in)."""
    snippet = readme_api_snippet()
    assert '"http://127.0.0.1:7860"' in snippet and snippet.count('"clip.mp4"') == 2
    code = snippet.replace('"http://127.0.0.1:7860"', repr(captioning_demo_url)).replace(
        '"clip.mp4"', repr(str(media_dir / "single_face.mp4")))
    values: dict = {}
    exec(compile(code, str(SPACE_DIR / "README.md"), "exec"), values)
    assert Path(values["tracked_faces"]).suffix == ".mp4"
    assert [item["caption"] for item in values["face_crops"]] == expected_track["captions"]
    assert "Main character: person 1" in values["summary"] and "thick green box is person 1" in values["summary"]
    assert [item["caption"] for item in values["people"]] == ["person 1 · main"]
    assert values["measured_description"].startswith(("Measured description", "No measured description here"))
    assert isinstance(values["model_caption"], str) and values["model_caption"].strip()
    assert "TEM" in values["tem_scores"] and values["matched_events"]["headers"]


@pytest.mark.slow
def test_tem_tab_scores_like_the_metric(tem_ui, captioning_demo_url):
    """The TEM endpoint shows the metric's own matched-event table (one row per event, in the caption's order)."""
    import evaluate
    from gradio_client import Client

    prediction, reference = tem_ui.EXAMPLES[0]
    metric = evaluate.load(str(REPO_ROOT / "evaluate_metric" / "tem"))
    expected = metric.compute(predictions=[prediction], references=[reference], return_events=True)
    expected_rows = expected["events"][0]["table"]

    summary, table = Client(captioning_demo_url, verbose=False).predict(prediction, reference, api_name="/score_caption")
    assert f"TEM {expected['tem']:.3f}" in summary
    assert table["headers"] == tem_ui.TABLE_COLUMNS
    assert [row[0] for row in table["data"]] == [row["prediction_event"] or "" for row in expected_rows]
    assert [row[5] for row in table["data"]] == [row["relation"] for row in expected_rows]


@pytest.mark.slow
@pytest.mark.browser
def test_browser_tem_tab_shows_the_matched_events(tem_ui, browser, captioning_demo_url):
    import evaluate

    prediction, reference = tem_ui.EXAMPLES[0]
    metric = evaluate.load(str(REPO_ROOT / "evaluate_metric" / "tem"))
    expected_rows = metric.compute(predictions=[prediction], references=[reference], return_events=True)
    expected_events = [row["prediction_event"] or "" for row in expected_rows["events"][0]["table"]]

    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    page.goto(captioning_demo_url)
    page.get_by_role("tab", name="Score a caption (TEM)").click()
    page.locator("#tem-prediction textarea").fill(prediction)
    page.locator("#tem-reference textarea").fill(reference)
    page.locator("#tem-score").click()
    page.locator("#tem-summary", has_text="TEM").wait_for(timeout=60_000)
    first_column = page.locator('#tem-table [role=gridcell][data-col="0"]')
    first_column.first.wait_for(timeout=10_000)
    assert [text.strip() for text in first_column.all_inner_texts()] == expected_events
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS_DIR / "space-tem.png"), full_page=True)
    page.close()


# ------------------------------------------------------------------------------------------- choosing a person
def test_follow_person_redraws_from_the_stored_track(space_config, space_tracking, person_clips, tmp_path,
                                                     monkeypatch):
    """Picking a face in the people gallery follows that person with the same decoded frames and boxes (no decoding,
    no detection); the expression plot and the measured caption switch to them."""
    from person_clips import person_in_box

    import facetrack.analysis.video_analysis as video_analysis
    from facetrack.expressions.report import analyze_expressions
    from facetrack.faces.tracking import FaceTracker

    config = space_config.DemoConfig(num_frames=NUM_FRAMES, work_dir=tmp_path)
    built = person_clips["side_by_side_swap"]
    tracker = FaceTracker()
    first = space_tracking.track_video(str(built.path), config, tracker, lambda *a, **k: None)
    assert [label for _, label in first.people] == ["person 1 · main", "person 2"]

    def no_decoding(*args, **kwargs):
        raise AssertionError("picking a person must not decode the video again")

    monkeypatch.setattr(video_analysis, "load_video", no_decoding)
    monkeypatch.setattr(tracker, "detect", no_decoding)
    chosen = space_tracking.follow_person(first.analysis, 2, config, lambda *a, **k: None)
    track = chosen.analysis.source_track().to_dict()
    assert track["person_id"] == 2 and track["main_person_id"] == 1
    assert chosen.analysis.clip is first.analysis.clip  # the same decoded frames
    assert "Following person 2" in chosen.summary and "picked in the gallery" in chosen.summary
    # What the overlay's thick box marks is said for whoever is followed (the video's label said "main character").
    assert "the thick green box is person 2, chosen (the main character, person 1, has a thin box)" in chosen.summary
    assert "the thick green box is person 1, the main character" in first.summary
    truth = built.truth_at([frame["frame_index"] for frame in track["frames"]])
    assert all(person_in_box(frame["box"], people) == "B" for frame, people in zip(track["frames"], truth))
    assert len(chosen.crops) == NUM_FRAMES
    assert set(chosen.presence["track"]) == {"main character (person 1)", "person 2"}  # the plot keeps its series
    if chosen.analysis.expression_problem:
        assert chosen.measured_caption.startswith("No measured description here: the expression timeline needs")
        assert chosen.expression_plot is None
        return
    # Person 2's own measurement (in their boxes), not the main character's; person 1's is still there.
    report = chosen.analysis.expressions
    assert report.person_id == 2 and chosen.measured_caption == report.caption
    assert [frame.box for frame in report.timeline.frames] == chosen.analysis.track.boxes
    independent = analyze_expressions(first.analysis.clip, first.analysis.track, 2)
    assert report.to_dict() == independent.to_dict()
    assert first.analysis.expressions.person_id == 1 and first.measured_caption == first.analysis.expressions.caption
    assert chosen.expression_plot is not None
    # Back to the main character: nothing is measured again.
    monkeypatch.setattr(video_analysis, "analyze_expressions", no_decoding)
    back = space_tracking.follow_person(chosen.analysis, 1, config, lambda *a, **k: None)
    assert back.measured_caption == first.measured_caption and "Main character: person 1" in back.summary


def test_without_the_expression_packages_the_page_says_what_to_install(space_config, space_tracking, media_dir,
                                                                       tmp_path, monkeypatch):
    import facetrack.analysis.video_analysis as video_analysis
    from facetrack.expressions.models import INSTALL_STEP, ExpressionDependencyError

    def missing(*args, **kwargs):
        raise ExpressionDependencyError(f"the expression timeline needs mediapipe==1.2.3; install with: {INSTALL_STEP}")

    monkeypatch.setattr(video_analysis, "check_expression_dependencies", missing)
    config = space_config.DemoConfig(num_frames=4, work_dir=tmp_path)
    for video in ("single_face.mp4", "no_face.mp4"):  # with and without a face to measure
        outputs = space_tracking.track_video(str(media_dir / video), config, None, lambda *a, **k: None)
        assert outputs.measured_caption == ("No measured description here: the expression timeline needs "
                                            f"mediapipe==1.2.3; install with: {INSTALL_STEP}")
        assert outputs.expression_plot is None and Path(outputs.annotated_video).is_file()
    assert len(space_tracking.track_video(str(media_dir / "single_face.mp4"), config, None,
                                     lambda *a, **k: None).crops) >= 3  # everything else works


@pytest.mark.browser
def test_browser_people_gallery_picks_whom_to_follow(space_app, browser, person_clips):
    demo = space_app.build_demo(model_path="", num_frames=NUM_FRAMES)
    with serving(demo) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.goto(url)
        upload(page, person_clips["side_by_side_swap"].path)
        people = page.locator("#people .thumbnail-item")
        people.nth(1).wait_for(timeout=TRACK_TIMEOUT_MS)
        assert people.count() == 2
        page.locator("#track-summary", has_text="Main character: person 1").wait_for(timeout=TRACK_TIMEOUT_MS)
        page.locator("#presence-plot svg.marks").wait_for(timeout=TRACK_TIMEOUT_MS)
        measured = measured_caption_shown(page)  # shown with no model configured
        with_models = not missing_expression_dependencies()
        if with_models:
            assert measured.startswith("Measured description")
            page.locator("#expression-plot img").wait_for(state="visible", timeout=TRACK_TIMEOUT_MS)
            first_plot = page.locator("#expression-plot img").get_attribute("src")
        else:
            assert measured.startswith("No measured description here: the expression timeline needs")
        people.nth(1).click()
        page.locator("#track-summary", has_text="Following person 2").wait_for(timeout=TRACK_TIMEOUT_MS)
        assert "the thick green box is person 2, chosen" in page.locator("#track-summary").inner_text()
        assert page.locator("#face-crops .thumbnail-item").count() == NUM_FRAMES
        if with_models:  # the expression plot is redrawn for person 2 (a new picture), with their caption
            page.wait_for_function("(old) => document.querySelector('#expression-plot img')?.src !== old",
                                   arg=first_plot, timeout=TRACK_TIMEOUT_MS)
            assert measured_caption_shown(page).startswith("Measured description")
        # Both persons' lines are still drawn in colour after the switch (a renamed series would lose its colour).
        page.wait_for_timeout(1000)
        strokes = page.evaluate(
            "() => Array.from(document.querySelectorAll('#presence-plot svg.marks path[aria-roledescription=\"line "
            "mark\"]')).map(path => path.getAttribute('stroke'))"
        )
        assert len(strokes) == 2 and all(strokes), strokes
        ARTIFACTS_DIR.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS_DIR / "space-people.png"), full_page=True)
        page.close()


# ------------------------------------------------------------------------------------------- under load (issue 23)
def _request_files(outputs) -> list[Path]:
    return [Path(outputs.annotated_video), *(Path(path) for path, _ in outputs.crops),
            *(Path(path) for path, _ in outputs.people)]


def test_each_request_writes_its_own_files_and_never_rewrites_them(space_config, space_tracking, media_dir, tmp_path):
    """The overlay, crop and people images of a request are files of its own (a folder and names no other request
    uses), complete when they appear; drawing the same analysis again writes new files and leaves these alone."""
    from PIL import Image

    config = space_config.DemoConfig(num_frames=4, work_dir=tmp_path)
    first = space_tracking.track_video(str(media_dir / "single_face.mp4"), config, None, lambda *a, **k: None)
    files = _request_files(first)
    assert len(first.crops) >= 3 and len(first.people) == 1
    assert all(path.is_file() for path in files) and len({path.parent for path in files}) == 1
    folder = files[0].parent
    assert folder.parent == tmp_path and folder.name.startswith("request-")
    assert all(folder.name.removeprefix("request-") in path.name for path in files)  # unique names, not just folders
    for path, _ in first.crops + first.people:
        with Image.open(path) as image:
            image.load()
            assert image.size == (space_config.CROP_SIZE, space_config.CROP_SIZE)
    before = {path: (path.stat().st_mtime_ns, path.read_bytes()) for path in files}
    again = space_tracking.follow_person(first.analysis, first.analysis.track.main_person_id, config,
                                         lambda *a, **k: None)
    assert not set(_request_files(again)) & set(files)
    assert {path: (path.stat().st_mtime_ns, path.read_bytes()) for path in files} == before
    assert not [path for path in tmp_path.rglob(".*") if path.is_file()]  # no half-written files left behind


@pytest.mark.slow
def test_concurrent_track_calls_all_come_back_complete(space_app, media_dir, tmp_path, monkeypatch):
    """16 /track calls of the same clip at once, through gradio_client: every reply comes back whole (each image
    decodes, the overlay video has its frames) and the same. Writes are slowed down, as on a busy disk, so that a
    file rewritten in place while another request downloads it is seen: gallery images returned as arrays were
    rewritten in Gradio's content-addressed cache by every request, and a download came back cut short."""
    import hashlib
    import pathlib
    from concurrent.futures import ThreadPoolExecutor

    import av
    from gradio_client import Client, handle_file
    from PIL import Image

    def slow_write_bytes(self, data):
        with open(self, "wb") as file:
            file.write(data[: len(data) // 2])
            file.flush()
            time.sleep(0.2)
            file.write(data[len(data) // 2 :])
        return len(data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", slow_write_bytes)
    demo = space_app.build_demo(model_path="", num_frames=4, concurrency_limit=4)
    with serving(demo) as url:
        def call(i: int):
            client = Client(url, verbose=False, download_files=str(tmp_path / f"client-{i}"))
            return client.predict(handle_file(str(media_dir / "single_face.mp4")), api_name="/track")

        with ThreadPoolExecutor(16) as pool:
            replies = list(pool.map(call, range(16)))

    def image_path(item) -> str:
        image = item["image"]
        return image["path"] if isinstance(image, dict) else image

    contents = set()
    for video, crops, _, summary, people, _, _ in replies:
        assert "Main character: person" in summary
        with av.open(video) as container:
            assert sum(1 for _ in container.decode(video=0)) == 4
        images = [image_path(item) for item in [*crops, *people]]
        assert len(crops) >= 3 and len(people) == 1
        for path in images:
            with Image.open(path) as image:
                image.load()  # raises on a file cut short
        contents.add(tuple(hashlib.sha256(Path(path).read_bytes()).hexdigest() for path in [video, *images]))
    assert len(contents) == 1  # every reply holds the same, whole files
