"""The dataset card (README.md) of a release built by `facetrack dataset build`: the YAML the Hub and `load_dataset`
read (`license`, `configs` naming each split's exact shard files, `dataset_info`) and the documentation of the columns,
prompts and face tracks, and each split's provenance: rows per caption source, the settings that made them (clip
cutting, measurement, the rewrite model and its versioned prompt) and the facetrack version."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any



def _split_sizes(out_dir: Path, files: dict[str, list[str]]) -> dict[str, dict[str, int]]:
    """Per split: rows, uncompressed bytes and file bytes, read from its shards' parquet footers."""
    import pyarrow.parquet as pq

    sizes: dict[str, dict[str, int]] = {}
    for split, names in files.items():
        size = sizes.setdefault(split, {"num_examples": 0, "num_bytes": 0, "file_bytes": 0})
        for name in names:
            metadata = pq.ParquetFile(out_dir / name).metadata
            size["num_examples"] += metadata.num_rows
            size["num_bytes"] += sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
            size["file_bytes"] += (out_dir / name).stat().st_size
    return sizes


def write_dataset_card(
    out_dir: str | os.PathLike,
    license: str = "other",
    pretty_name: str = "FDA (DFEC)",
    files: dict[str, list[str]] | None = None,
    card_path: str | os.PathLike | None = None,
    reports: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """Write the dataset card with the YAML the Hub and `load_dataset` read (`license`, `configs` listing each
    split's exact shard files, `dataset_info`) and the documentation of columns, prompts and face tracks.

    files: split -> shard paths relative to out_dir (default: what the live card lists). card_path: where to write
    it (default out_dir/README.md; a build stages it elsewhere first). reports: split -> its build report entry
    (default: the live build_report.json), for the provenance section."""
    from datasets import DatasetInfo, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard, DatasetCardData

    from facetrack.data.schema import CAPTION_SOURCES, INSTRUCTION_TEMPLATES, dataset_features
    from facetrack.data.release import read_reports, split_files

    out_dir = Path(out_dir)
    files = split_files(out_dir) if files is None else files
    reports = read_reports(out_dir) if reports is None else reports
    split_sizes = _split_sizes(out_dir, files)
    card_data = DatasetCardData(
        license=license,
        pretty_name=pretty_name,
        task_categories=["video-text-to-text"],
        language=["en"],
        tags=["facial-expression", "video-captioning", "face-tracking", "instruction-tuning"],
    )
    info = DatasetInfo(
        features=dataset_features(),
        download_size=sum(size["file_bytes"] for size in split_sizes.values()),
        dataset_size=sum(size["num_bytes"] for size in split_sizes.values()),
    )
    info.splits = SplitDict(
        {
            name: SplitInfo(name=name, num_examples=size["num_examples"], num_bytes=size["num_bytes"])
            for name, size in split_sizes.items()
        }
    )
    DatasetInfosDict({"default": info}).to_dataset_card_data(card_data)
    data_files = [{"split": name, "path": list(names)} for name, names in files.items()]
    MetadataConfigs({"default": {"data_files": data_files}}).to_dataset_card_data(card_data)

    prompts = "\n".join(f"{index}. {prompt}" for index, prompt in enumerate(INSTRUCTION_TEMPLATES))
    splits = "\n".join(
        f"| {name} | {size['num_examples']} | "
        + " | ".join(str((reports.get(name) or {}).get("caption_sources", {}).get(source, 0))
                     for source in CAPTION_SOURCES) + " |"
        for name, size in split_sizes.items()
    )
    body = f"""
# {pretty_name}: dynamic facial expression captions with precomputed face tracks

Video clips with a caption of how the main character's facial expression changes over time, in the format of
FDA/DFEC ("Facial Dynamics in Video: Instruction Tuning for Improved Facial Expression Perception and Contextual
Awareness", arXiv 2501.07978), built by `facetrack dataset build` (FaceTrack-MM).

| split | rows | human captions | measured captions | rewritten captions |
|---|---|---|---|---|
{splits}

## Columns
- `id` (string): the annotation id; for a clip cut from a video, `{{video path}}#{{clip number}}`.
- `video` (Video): the clip, embedded (`{{"bytes", "path"}}`; `path` is the path in the source annotation file,
  relative to the video root, or for a clip cut from a video a name for it: the clip alone, re-encoded as H.264).
  `ds[0]["video"]` is a torchcodec `VideoDecoder` (datasets 5 decodes `Video` with
  torchcodec, which needs FFmpeg's libraries: `apt-get install ffmpeg`); or take the bytes with
  `ds.cast_column("video", Video(decode=False))` and decode them with
  `facetrack.data.build.load_example_video(row["video"], row["face_track"])` (decord / PyAV).
- `caption` (string): the reference description.
- `caption_source` (string): where the caption comes from: `human` (the annotation file), `measured` (written by
  rule from the clip's measured expression events: see the face track's `expressions`; the "Measured description"
  label its first sentence carries there is left out here, this column says it instead) or `rewritten` (that
  caption rewritten in FDA style by the language model named below, given only the measured events as facts).
- `source_video` (string): the video the row comes from, relative to the video root; `clip_start`, `clip_end`
  (float, seconds): where the clip lies in it (null: the row is the whole video).
- `instruction` (string): the user prompt of this row.
- `messages` (list): the chat-format conversation for instruction tuning: user = video + instruction,
  assistant = caption.
- `face_track` (string): JSON of `FaceTrackResult.to_dict()`: the sampled frame indices and timestamps, the main
  character's box per frame (`null` where the face is missing), every track's boxes, and why the main track was
  chosen. Training decodes exactly these frames and crops these boxes instead of running face detection.
  Format version 3 also holds, under `expressions`, the main character's measured expression timeline
  (blendshapes, head pose, eye/mouth/brow measures, 7 emotion probabilities per frame), its events and the
  measured caption (from face landmarks and an emotion classifier, not from a language model), when the build had
  the optional expression packages (`build_report.json` says whether).
- `has_face` (bool): False when no face was found; such rows are kept with an empty main track.

## Instruction prompts
One template per row, chosen by a SHA-256 hash of the id (deterministic). Template 0 is the evaluation prompt
used on FEC-Bench.

{prompts}

## Build report
`build_report.json` lists, per split, the rows dropped because their video was missing, could not be decoded (or
was truncated), lay outside the video root or changed during the build, or because their path or text could not be
stored (a NUL byte, a lone surrogate), and the rows kept without a face; for clips cut from videos, the videos too
short for a clip and the clips skipped (a shot cut leaving too short a stretch, the main face seen in too few
frames, a failed rewrite), counted per reason.

## Provenance
{{provenance}}

## License
The captions follow the license of the annotation source; the videos come from their source datasets (CAER,
RAVDESS, DFEW, MER24, MAFW, AFEW-VA, FERV39k), each under its own, often research-only, terms. Check them before
redistribution.
"""
    # As it is: the card template is rendered by Jinja, and a rewrite prompt may hold braces.
    body = body.replace("{provenance}", "{% raw %}" + _provenance(split_sizes, reports) + "{% endraw %}")
    card = DatasetCard.from_template(card_data, template_str="---\n{{ card_data }}\n---\n" + body)
    card_path = Path(card_path) if card_path is not None else out_dir / "README.md"
    card.save(card_path)
    return card_path


def _provenance(split_sizes: dict[str, dict[str, int]], reports: dict[str, dict[str, Any]]) -> str:
    """Per split: the settings its rows were made with (JSON, as build_report.json records them) and, where a
    language model rewrote captions, its name and the exact prompt (versioned)."""
    sections = []
    for name in split_sizes:
        report = reports.get(name) or {}
        settings = dict(report.get("settings") or {})
        rewriter = settings.pop("rewriter", None)
        lines = [f"### {name}", "", f"Built by facetrack-mm {settings.get('facetrack', '(unrecorded version)')}; "
                 f"measured expressions: {report.get('expressions') or 'not recorded'}.", "",
                 "```json", json.dumps(settings, indent=2, sort_keys=True), "```"]
        if report.get("skipped"):
            lines += ["", "Left out: " + ", ".join(f"{count} {reason}" for reason, count
                                                   in sorted(report["skipped"].items())) + "."]
        if rewriter:
            lines += ["", f"Captions rewritten by `{rewriter.get('model')}` with prompt version "
                      f"{rewriter.get('prompt_version')}:", "", "```text", str(rewriter.get("prompt", "")), "```"]
        sections.append("\n".join(lines))
    return "\n\n".join(sections)
