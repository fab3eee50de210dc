"""Training data from unlabelled videos (`facetrack dataset build --videos DIR`), built locally and on a real local
Ray cluster: the same rows either way, every clip captioned by its measured expressions, never across a shot cut;
a worker or the driver killed with -9 and the build still ends with the release an uninterrupted build writes.

(One file because the Ray cluster, started once for the module, and the build of the shipped media are shared.)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facetrack.data.build import DatasetBuildError, build_dataset
from facetrack.data.clips import plan_windows
from facetrack.expressions.caption import measured_caption_text
from facetrack.data.sample_media import write_astronaut_clip
from facetrack.data.sources import list_videos
from facetrack.expressions.caption import MEASURED_LABEL, PHRASES
from facetrack.expressions.models import missing_expression_dependencies

pytestmark = pytest.mark.skipif(bool(missing_expression_dependencies()),
                                reason="clips are captioned by their measured expressions: the expression packages "
                                       "are missing (scripts/setup.sh installs them)")
TESTS_DIR = Path(__file__).resolve().parent
# The shipped media, cut into 3-second clips: WolfgangLanger (20 s) gives two, single_face (2.4 s) one whole-video
# clip, face_noface one that ends at its cut to a cartoon title (its second window has no face), no_face none.
MEDIA_SETTINGS = dict(num_frames=4, clip_seconds=3.0, clips_per_video=2)
TINY_SETTINGS = dict(num_frames=3, clip_seconds=1.0, clips_per_video=2)  # three 2-second clips: six clips


def release_state(out_dir: Path, split: str = "train") -> dict:
    """Everything a release holds, with the build's own ids and file names taken out."""
    from datasets import Video, load_dataset

    from facetrack.data.release import split_files

    rows = load_dataset(str(out_dir), split=split).cast_column("video", Video(decode=False)).to_list()
    report = json.loads((out_dir / "build_report.json").read_text())[split]
    files = split_files(out_dir)[split]
    assert report["shards"] == files
    card = (out_dir / "README.md").read_text()
    for name in files:
        card = card.replace(name, "SHARD")
    leftovers = sorted(path.relative_to(out_dir).as_posix() for path in out_dir.rglob("*")
                       if ".facetrack-staging" in str(path) or ".facetrack-work" in str(path))
    report = {key: value for key, value in report.items() if key not in ("shards", "build_id")}
    return {"rows": rows, "report": report, "card": card, "leftovers": leftovers}


@pytest.fixture(scope="module")
def ray_cluster():
    """A real local Ray cluster with 2 CPUs for the module, joined by the builds here and by a driver in another
    process. Its workers can import this test file (the rewriter that kills its worker lives here): they inherit
    PYTHONPATH from the cluster's processes, started here."""
    ray = pytest.importorskip("ray", reason='Ray is the "ray" extra: scripts/setup.sh --test installs it')
    python_path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR), python_path]))
    try:
        ray.init(num_cpus=2, include_dashboard=False)
    finally:
        if python_path is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = python_path
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def unlabelled(media_dir, tmp_path_factory):
    """An unlabelled folder of the shipped media, with a sub-folder, a non-video file and a video without a face."""
    root = tmp_path_factory.mktemp("unlabelled") / "videos"
    (root / "pexels").mkdir(parents=True)
    (root / "more").mkdir()
    shutil.copy(media_dir / "single_face.mp4", root / "pexels" / "single_face.mp4")
    shutil.copy(media_dir / "WolfgangLanger_Pexels.mp4", root / "WolfgangLanger_Pexels.mp4")
    shutil.copy(media_dir / "face_noface.mov", root / "more" / "face_noface.mov")
    shutil.copy(media_dir / "no_face.mp4", root / "more" / "no_face.mp4")
    (root / "more" / "notes.txt").write_text("not a video")
    return root


@pytest.fixture(scope="module")
def local_release(unlabelled):
    out_dir = unlabelled.parent / "local"
    report = build_dataset(videos=unlabelled, out_dir=out_dir, **MEDIA_SETTINGS)
    return out_dir, report


@pytest.fixture(scope="module")
def tiny_videos(tmp_path_factory):
    """Three 2-second clips of one face (the astronaut photo, moving camera): six 1-second clips, fast to build."""
    root = tmp_path_factory.mktemp("tiny") / "videos"
    root.mkdir()
    for name, motion in (("a", "zoom_in"), ("b", "pan_left"), ("c", "zoom_out")):
        write_astronaut_clip(root / f"{name}.mp4", motion=motion, num_frames=24, fps=12, width=128, height=128)
    return root


class EchoRewriter:
    """A rewriter that needs no model: the measured caption, marked. Picklable, like CaptionRewriter."""

    def describe(self) -> dict:
        return {"model": "echo", "prompt_version": "test", "prompt": "Rewrite {facts}."}

    def rewrite(self, report) -> str:
        return "Rewritten: " + measured_caption_text(report.caption)


class KillOnceRewriter(EchoRewriter):
    """Kills the process it runs in (kill -9) the first time any process rewrites a caption; `marker` records that
    it has. Otherwise an EchoRewriter."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def describe(self) -> dict:
        return EchoRewriter.describe(self)  # the same settings as the build it is compared with

    def rewrite(self, report) -> str:
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return super().rewrite(report)
        os.kill(os.getpid(), signal.SIGKILL)


# ---------------------------------------------------------------------------------------------- the acceptance
def test_unlabelled_folder_gives_measured_captions_and_the_same_rows_with_ray(local_release, unlabelled, ray_cluster):
    from facetrack.analysis.video_analysis import read_face_track

    out_dir, report = local_release
    local = release_state(out_dir)
    rows = local["rows"]
    assert [row["id"] for row in rows] == ["WolfgangLanger_Pexels.mp4#0", "WolfgangLanger_Pexels.mp4#1",
                                           "more/face_noface.mov#0", "pexels/single_face.mp4#0"]
    for row in rows:
        track = read_face_track(json.loads(row["face_track"]))
        # The caption is the clip's measured caption (its events are the facts), without the label.
        assert row["caption_source"] == "measured" and row["caption"]
        assert row["caption"] == measured_caption_text(track.expression_report.caption)
        assert not row["caption"].startswith(MEASURED_LABEL) and MEASURED_LABEL not in row["caption"]
        assert row["messages"][1]["content"][0]["text"] == row["caption"]
        assert row["source_video"] == row["id"].split("#")[0] and 0 <= row["clip_start"] < row["clip_end"]
        assert row["has_face"] and len(track.frames) == MEDIA_SETTINGS["num_frames"]

    # The video without a face and face_noface's cartoon end gave no clip; the text file is not a video at all.
    saved = json.loads((out_dir / "build_report.json").read_text())["train"]
    assert saved["input"] == "videos" and saved["num_input"] == 4 and saved["num_written"] == 4
    assert saved["caption_sources"] == {"measured": 4} and saved["skipped"] == {"no_face": 2}
    assert {(entry["video"], entry["status"]) for entry in saved["dropped"]} == {
        ("more/face_noface.mov", "no_face"), ("more/no_face.mp4", "no_face")}
    assert "notes.txt" not in json.dumps(saved)
    assert report.num_written == 4 and report.cpu_seconds["detect"] > 0

    # --engine ray on a real cluster (2 actors): the same release, row for row, byte for byte.
    ray_out = unlabelled.parent / "ray"
    build_dataset(videos=unlabelled, out_dir=ray_out, engine="ray", num_proc=2, **MEDIA_SETTINGS)
    assert release_state(ray_out) == local
    assert local["leftovers"] == []


def test_a_clip_is_its_own_video_and_never_spans_a_shot_cut(local_release, unlabelled):
    """The row's video is the clip alone: its frames are the source's frames of that window (re-encoded), its
    face track's frames are the clip's, and no two of its frames are a shot cut apart."""
    from datasets import Video, load_dataset

    from facetrack.training.data import load_example_video
    from facetrack.video.decode import load_video
    from facetrack.video.shot_cuts import CUT_THRESHOLD, cut_scores

    out_dir, _ = local_release
    rows = load_dataset(str(out_dir), split="train").cast_column("video", Video(decode=False))
    for row in rows:
        clip = load_video(row["video"]["bytes"], num_frames=None)
        assert max(cut_scores(clip.frames), default=0.0) <= CUT_THRESHOLD, row["id"]
        seconds = clip.duration
        assert abs(seconds - (row["clip_end"] - row["clip_start"])) < 0.1
        source = load_video(unlabelled / row["source_video"], num_frames=None, max_side=64)
        inside = [index for index, time in enumerate(source.timestamps)
                  if row["clip_start"] - 1e-3 <= time < row["clip_end"] - 1e-3]
        assert len(inside) == len(clip), row["id"]  # every source frame of the window, and no other
        middle = load_video(unlabelled / row["source_video"], frame_indices=[inside[len(inside) // 2]]).frames[0]
        assert np.abs(clip.frames[len(clip) // 2].astype(int) - middle.astype(int)).mean() < 6  # H.264, CRF 23
        decoded, track = load_example_video(row["video"], row["face_track"])
        assert len(decoded) == len(track.frames) and track.width == clip.width

    # face_noface cuts to a cartoon title 2.7 s in: its first 3-second window stops at the cut.
    [cut_clip] = [row for row in rows if row["id"] == "more/face_noface.mov#0"]
    assert 2.0 < cut_clip["clip_end"] < 2.8


def test_load_dataset_reads_the_release_and_its_video_decodes(local_release):
    import importlib.util

    from datasets import load_dataset

    out_dir, _ = local_release
    assert importlib.util.find_spec("torchcodec"), "torchcodec is a dependency (pyproject.toml): reinstall"
    try:
        import torchcodec.decoders  # noqa: F401  (loads the FFmpeg libraries)
    except (RuntimeError, OSError) as error:
        pytest.skip(f"torchcodec cannot load FFmpeg here ({str(error).splitlines()[0][:120]}): run scripts/setup.sh "
                    "as root to install Debian's ffmpeg")
    dataset = load_dataset(str(out_dir))["train"]
    row = dataset[0]
    video = row["video"]  # a torchcodec VideoDecoder over the clip
    seconds = row["clip_end"] - row["clip_start"]
    assert abs(len(video) / video.metadata.average_fps - seconds) < 0.1
    frames = video.get_frames_at([0, len(video) - 1])
    assert tuple(frames.data.shape[:2]) == (2, 3)

    # The card counts the clips per caption source and records the settings and the package version.
    import facetrack

    card = (out_dir / "README.md").read_text()
    assert "| train | 4 | 0 | 4 | 0 |" in card
    assert f"Built by facetrack-mm {facetrack.__version__}" in card and '"clip_seconds": 3.0' in card


# ---------------------------------------------------------------------------------------- kill -9 and resume
@pytest.fixture(scope="module")
def tiny_reference(tiny_videos, tmp_path_factory):
    """The uninterrupted build of the tiny videos (local, one process), with the echo rewriter."""
    out_dir = tmp_path_factory.mktemp("reference") / "release"
    build_dataset(videos=tiny_videos, out_dir=out_dir, rewriter=EchoRewriter(), **TINY_SETTINGS)
    return release_state(out_dir)


def test_a_ray_worker_killed_mid_build_loses_and_duplicates_nothing(tiny_videos, tiny_reference, tmp_path,
                                                                     ray_cluster):
    marker = tmp_path / "killed"
    out_dir = tmp_path / "release"
    report = build_dataset(videos=tiny_videos, out_dir=out_dir, rewriter=KillOnceRewriter(marker), engine="ray",
                           num_proc=2, **TINY_SETTINGS)
    assert marker.exists()  # an actor died with kill -9 in the middle of a clip; Ray restarted it and retried
    state = release_state(out_dir)
    assert state == tiny_reference
    assert [row["caption_source"] for row in state["rows"]] == ["rewritten"] * 6 and report.num_written == 6
    assert len({row["id"] for row in state["rows"]}) == 6


DRIVER_SCRIPT = r"""
import os, signal, sys
from facetrack.data import parts
from facetrack.data.build import build_dataset
from test_dataset_engine import EchoRewriter

videos, out_dir, address = sys.argv[1:4]
save, saved = parts.PartStore.save, []

def save_then_die(self, key, data):  # the driver dies just after the third clip is kept
    save(self, key, data)
    saved.append(key)
    if len(saved) == 3:
        os.kill(os.getpid(), signal.SIGKILL)

parts.PartStore.save = save_then_die
build_dataset(videos=videos, out_dir=out_dir, engine="ray", ray_address=address, num_proc=2, num_frames=3,
              clip_seconds=1.0, clips_per_video=2, rewriter=EchoRewriter())
print("NOT KILLED")
"""


def test_the_driver_killed_then_rerun_gives_the_uninterrupted_release(tiny_videos, tiny_reference, tmp_path,
                                                                       ray_cluster):
    out_dir = tmp_path / "release"
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS_DIR),
                                                                            os.environ.get("PYTHONPATH")]))}
    process = subprocess.run([sys.executable, "-c", DRIVER_SCRIPT, str(tiny_videos), str(out_dir), ray_cluster],
                             capture_output=True, text=True, timeout=300, env=environment)
    assert process.returncode == -9, process.stdout + process.stderr[-3000:]
    assert not (out_dir / "README.md").exists()
    assert len(list((out_dir / ".facetrack-work").rglob("*.parquet"))) == 3  # kept as they finished

    report = build_dataset(videos=tiny_videos, out_dir=out_dir, rewriter=EchoRewriter(), engine="ray", num_proc=2,
                           **TINY_SETTINGS)
    assert report.reused == 3  # the three finished clips were not made again
    state = release_state(out_dir)
    assert state == tiny_reference and state["leftovers"] == []


class DieOnTaskOne:
    """A worker whose process dies (kill -9) on task 1."""

    def __call__(self, task: int) -> int:
        if task == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return task * 10


def test_a_local_worker_process_killed_ends_the_run_with_one_line_instead_of_hanging():
    from facetrack.data.engine import EngineError, run_tasks

    with pytest.raises(EngineError, match="a worker process died .* run the same build again"):
        list(run_tasks([0, 1, 2, 3], DieOnTaskOne(), engine="local", num_workers=2))


# ------------------------------------------------------------------------------------------- rewriting captions
def test_captions_rewritten_by_a_chat_endpoint_from_the_measured_events_only(tiny_videos, tmp_path,
                                                                              fake_chat_server):
    from datasets import load_dataset

    from facetrack.analysis.video_analysis import read_face_track
    from facetrack.inference.caption_rewriter import PROMPT_VERSION, CaptionRewriter, event_fact

    server = fake_chat_server(lambda prompt: f"This video shows the changing facial expressions of the person. "
                                             f"({prompt.count(' s: ')} facts)")  # one per event line
    rewriter = CaptionRewriter("fda-writer", base_url=server.url, api_key="secret-key", cache_dir=str(tmp_path / "c"))
    out_dir = tmp_path / "release"
    report = build_dataset(videos=tiny_videos, out_dir=out_dir, rewriter=rewriter, **TINY_SETTINGS)
    assert report.caption_sources == {"rewritten": 6}

    rows = load_dataset(str(out_dir), split="train")
    prompts = [request["messages"][0]["content"] for request in server.requests]
    for row in rows:
        events = read_face_track(json.loads(row["face_track"])).expression_report.events
        assert row["caption_source"] == "rewritten"
        assert row["caption"] == ("This video shows the changing facial expressions of the person. "
                                  f"({len(events)} facts)")
        # Its prompt held the clip's events, as facts, and nothing of the measured caption's wording.
        prompt = rewriter.prompt_for(read_face_track(json.loads(row["face_track"])).expression_report)
        assert prompt in prompts and MEASURED_LABEL not in prompt
        assert all(event_fact(event) in prompt for event in events)
    assert server.calls == len(set(prompts)) == len(prompts)  # the same prompt is asked once (the disk cache)
    card = (out_dir / "README.md").read_text()
    assert f"`fda-writer` with prompt version {PROMPT_VERSION}" in card and "Use only" in card
    assert "secret-key" not in card and "secret-key" not in (out_dir / "build_report.json").read_text()
    assert "| train | 6 | 0 | 0 | 6 |" in card

    # An unreachable endpoint skips each clip with the reason, and a build with nothing left says so in one line.
    server.httpd.shutdown()
    server.httpd.server_close()
    with pytest.raises(DatasetBuildError, match="rewrite_failed|could not reach"):
        build_dataset(videos=tiny_videos, out_dir=tmp_path / "down", rewriter=CaptionRewriter(
            "fda-writer-2", base_url=server.url, cache_dir=str(tmp_path / "c")), **TINY_SETTINGS)


def test_prompt_facts_name_every_event_kind():
    from facetrack.expressions.events import EVENT_KINDS, ExpressionEvent
    from facetrack.inference.caption_rewriter import event_fact

    for kind in EVENT_KINDS:
        details = {"from": "neutral", "to": "happy"} if kind == "emotion_shift" else {}
        fact = event_fact(ExpressionEvent(kind=kind, start=0.0, end=0.5, strength=0.5, details=details))
        assert fact and "{" not in fact
    assert PHRASES["nod"].format(s="the person", p="their") == event_fact(ExpressionEvent("nod", 0, 1, 0.5))


# ------------------------------------------------------------------------------------- input, and what is kept
def test_listing_videos_from_a_folder_or_a_list_file(tmp_path):
    root = tmp_path / "videos"
    (root / "a" / "b").mkdir(parents=True)
    (root / ".cache").mkdir()
    (root / "out").mkdir()
    for name in ("x.mp4", "a/y.MOV", "a/b/z.mkv", ".cache/hidden.mp4", "out/built.mp4", "a/notes.txt", "a/y.srt"):
        (root / name).write_bytes(b"")
    found_root, videos, left_out = list_videos(root, exclude=root / "out")
    assert found_root == root and videos == ["a/b/z.mkv", "a/y.MOV", "x.mp4"] and left_out == []

    outside = tmp_path / "elsewhere.mp4"
    outside.write_bytes(b"")
    listing = root / "list.txt"
    listing.write_text(f"# my videos\nx.mp4\n\n{root / 'a' / 'y.MOV'}\n{outside}\nx.mp4\n")
    found_root, videos, left_out = list_videos(listing)
    assert found_root == root and videos == ["a/y.MOV", "x.mp4"]
    assert [(entry["status"], entry["video"]) for entry in left_out] == [("outside_root", ".../elsewhere.mp4")]
    assert str(tmp_path) not in json.dumps(left_out)  # no absolute path goes into a report

    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetBuildError, match="no video files"):
        list_videos(tmp_path / "empty")
    with pytest.raises(DatasetBuildError, match="does not exist"):
        list_videos(tmp_path / "nowhere")


def test_windows_spread_over_the_video_never_overlap_and_short_videos_give_one_or_none():
    windows = plan_windows(total_frames=472, fps=24.0, clip_seconds=3.0, clips_per_video=4)
    assert len(windows) == 4 and all(end - start == 72 for start, end in windows)
    assert windows[0][0] == 0 and windows[-1][1] == 472
    assert all(previous[1] <= following[0] for previous, following in zip(windows, windows[1:]))
    assert plan_windows(472, 24.0, 3.0, 1) == [(200, 272)]  # one: the middle
    assert len(plan_windows(100, 24.0, 3.0, 10)) == 1  # as many as fit
    assert plan_windows(50, 24.0, 3.0, 2) == [(0, 50)]  # shorter than a clip, at least half as long: all of it
    assert plan_windows(30, 24.0, 3.0, 2) == []  # too short


def test_bad_files_and_links_out_of_the_root_are_reported_once_and_never_read(tiny_videos, tmp_path):
    root = tmp_path / "videos"
    shutil.copytree(tiny_videos, root)
    (root / "broken.mp4").write_bytes(b"not a video" * 100)
    secret = tmp_path / "secret.mp4"
    shutil.copy(tiny_videos / "a.mp4", secret)
    (root / "link.mp4").symlink_to(secret)
    (root / "short.mp4").unlink(missing_ok=True)
    write_astronaut_clip(root / "short.mp4", motion="zoom_in", num_frames=4, fps=12, width=128, height=128)
    shutil.copy(tiny_videos / "a.mp4", os.path.join(bytes(root), b"not-utf8-\xff.mp4"))  # a name Arrow cannot store
    out_dir = tmp_path / "release"
    report = build_dataset(videos=root, out_dir=out_dir, **TINY_SETTINGS)
    problems = {entry["video"]: entry["status"] for entry in report.dropped}
    assert problems == {"broken.mp4": "unreadable", "link.mp4": "outside_root", "short.mp4": "too_short",
                        "not-utf8-\\udcff.mp4": "invalid_text"}
    assert len(report.dropped) == 4 and report.num_written == 6  # each bad video once, not once per clip
    assert str(tmp_path) not in (out_dir / "build_report.json").read_text()

    # A file of someone else's inside facetrack's work folder is kept when the work folder goes.
    (out_dir / ".facetrack-work").mkdir()
    (out_dir / ".facetrack-work" / "mine.txt").write_text("keep me")
    build_dataset(videos=root, out_dir=out_dir, **TINY_SETTINGS)
    assert (out_dir / ".facetrack-work" / "mine.txt").read_text() == "keep me"
    assert sorted(p.name for p in (out_dir / ".facetrack-work").iterdir()) == ["mine.txt"]


def test_cli_builds_from_videos_and_reports_bad_input_in_one_line(tiny_videos, tmp_path, capsys, monkeypatch):
    from facetrack.commands.cli import main

    out_dir = tmp_path / "release"
    assert main(["dataset", "build", "--videos", str(tiny_videos), "--out", str(out_dir), "--num-frames", "3",
                 "--clip-seconds", "1", "--clips-per-video", "2"]) == 0
    printed = capsys.readouterr().out
    assert "6 clips (6 measured captions) from 3 videos" in printed

    for argv, message in [
        ([], "give an annotation file"),
        (["a.json", "--videos", str(tiny_videos)], "not both"),
        (["--videos", str(tiny_videos), "--rewrite-base-url", "http://x"], "needs --rewrite-with"),
        (["--videos", str(tiny_videos), "--clip-seconds", "0"], "--clip-seconds"),
        (["--videos", str(tiny_videos), "--min-face-share", "2"], "--min-face-share"),
        (["--videos", str(tiny_videos), "--no-expressions"], "--no-expressions"),
        (["--videos", str(tmp_path / "nowhere")], "does not exist"),
    ]:
        assert main(["dataset", "build", *argv, "--out", str(tmp_path / "bad")]) == 2, argv
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err, (argv, err)

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    assert main(["dataset", "build", "--videos", str(tiny_videos), "--out", str(tmp_path / "bad"),
                 "--engine", "ray"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and 'pip install "facetrack-mm[ray]"' in err
    assert not (tmp_path / "bad").exists()
