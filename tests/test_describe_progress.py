"""`facetrack describe --model` reports where long work stands on stderr (loading, tracking, each person's caption),
while stdout holds only the result."""

from __future__ import annotations

import json

from facetrack.commands.cli import main


def progress_lines(stderr: str) -> list[str]:
    return [line.removeprefix("describe: ") for line in stderr.splitlines() if line.startswith("describe: ")]


def test_each_person_with_a_model_reports_each_stage_and_each_person(person_clips, tiny_model_dir, capsys):
    built = person_clips["side_by_side_swap"]
    assert main(["describe", str(built.path), "--model", str(tiny_model_dir), "--frames", "8", "--max-new-tokens",
                 "4", "--each-person", "--json"]) == 0
    captured = capsys.readouterr()
    persons = json.loads(captured.out)["persons"]  # stdout is the JSON and nothing else
    lines = progress_lines(captured.err)
    assert lines[0] == f"loading the model {tiny_model_dir}..."
    assert lines[1].startswith(f"loading the model {tiny_model_dir}: done in ")
    assert lines[2] == "decoding 8 frames, tracking faces and measuring expressions..."
    assert lines[3].startswith("decoding 8 frames, tracking faces and measuring expressions: done in ")
    assert lines[4] == f"{len(persons)} person(s) visible in at least 25% of the sampled frames"
    expected = []
    for index, entry in enumerate(persons, start=1):
        stage = f"captioning person {entry['person_id']} ({index}/{len(persons)})"
        expected += [f"{stage}...", f"{stage}: done in"]
    assert [line.split(" in ")[0] + " in" if ": done in " in line else line for line in lines[5:]] == expected
    assert len(persons) == 2


def test_one_video_with_a_model_streams_the_caption_and_reports_the_stages(media_dir, tiny_model_dir, capsys):
    assert main(["describe", str(media_dir / "single_face.mp4"), "--model", str(tiny_model_dir), "--frames", "4",
                 "--max-new-tokens", "4"]) == 0
    captured = capsys.readouterr()
    stages = [line for line in progress_lines(captured.err) if line.endswith("...")]
    assert stages == [f"loading the model {tiny_model_dir}...",
                      "decoding 4 frames, tracking faces and measuring expressions..."]
    assert captured.out.strip() and "describe:" not in captured.out  # the caption, streamed to stdout
