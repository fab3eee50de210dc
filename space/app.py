"""FaceTrack-MM Gradio demo: drop in a video, see whose face the model follows, what was measured of their expression
(a timeline plot and a measured description) and what the model says about it.

Each upload goes through the one analysis pipeline once (`video_analysis.analyze_video`: decode, track, measure);
the resulting clip and track objects stay in the session (`gr.State`) for the people gallery and the caption step.

This file lays the page out and starts it; each job has its own module beside it (imported as top-level modules,
as they sit in the Space's repository): `space_config` (settings, limits, upload checks, examples), `space_tracking`
(the tracking step and its views), `space_caption` (the caption model), `space_tem` (the TEM tab).

Run locally:  python space/app.py [--model PATH_OR_HUB_ID] [--host 127.0.0.1] [--port 7860]

Configuration (environment variables; the command-line flags win):
  FACETRACK_MODEL                 Hub id or local folder (e.g. written by train_sft.py) of the captioning model;
                                  without it the demo tracks faces, shows the measured description (no language
                                  model) and says how to configure a model.
  FACETRACK_SPACE_NUM_FRAMES      frames sampled per video (default 16 on CPU, 32 on GPU)
  FACETRACK_SPACE_MAX_SECONDS     longest video accepted, seconds (default 120)
  FACETRACK_SPACE_MAX_MB          largest upload accepted, MB (default 100)
  FACETRACK_MAX_VIDEO_PIXELS      largest frame accepted, pixels (default 4096 x 2160: 4K; read from the file's
                                  header before anything is decoded, so a tiny file of huge frames cannot exhaust
                                  memory)
  FACETRACK_SPACE_CONCURRENCY     requests processed at once; the rest wait in the queue (default 1)
  FACETRACK_SPACE_MAX_NEW_TOKENS  longest caption, tokens (default 256)
  FACETRACK_TEM_METRIC            the TEM `evaluate` module, a folder or Hub id (default: the facetrack package's)
  GRADIO_SERVER_NAME / GRADIO_SERVER_PORT   where to listen (Gradio's own variables)
"""

from __future__ import annotations

import argparse
import atexit
import shutil
from collections.abc import Iterator
from pathlib import Path

import gradio as gr

from space_caption import CaptionModel
from space_config import OLD_OUTPUT_SECONDS, DemoConfig, example_videos, gpu_task, user_message
from space_tem import build_tem_tab
from space_tracking import MEASURED_CAPTION_INFO, follow_person, track_video


# ------------------------------------------------------------------------------------------------------- the demo
NO_MODEL_MESSAGE = (
    "**No caption model configured**, so this demo shows the measured description only (written by rules from the "
    "measured events, never by a language model). For a model's caption beside it, point `FACETRACK_MODEL` at a "
    "Hub model id or at a local folder written by `train_sft.py`, then restart: "
    "`FACETRACK_MODEL=path/to/model python space/app.py` (or `python space/app.py --model path/to/model`)."
)
INTRO = (
    "# FaceTrack-MM\n"
    "Drop in a video: FaceTrack-MM samples frames, tracks every face, tells the people apart, picks the **main "
    "character** (thick box) and describes how their facial expression changes; click another face under *People* "
    "to follow that person instead. [Paper](https://arxiv.org/abs/2501.07978)"
)


def build_demo(
    model_path: str | None = None,
    num_frames: int | None = None,
    max_duration_s: float | None = None,
    max_file_mb: float | None = None,
    concurrency_limit: int | None = None,
    max_new_tokens: int | None = None,
) -> gr.Blocks:
    """The demo's Blocks; arguments left as None come from the environment (see the module docstring)."""
    config = DemoConfig.from_env(
        model_path=model_path,
        num_frames=num_frames,
        max_duration_s=max_duration_s,
        max_file_mb=max_file_mb,
        concurrency_limit=concurrency_limit,
        max_new_tokens=max_new_tokens,
    )
    atexit.register(shutil.rmtree, config.work_dir, ignore_errors=True)  # the app's own temp files go with it
    from facetrack.faces.tracking import FaceTracker

    tracker = FaceTracker(detector=config.detector)  # one detector session for all requests (track() keeps no state)
    captioner = CaptionModel(config.model_path, config.max_new_tokens) if config.model_path else None

    def track(video: str | None, progress: gr.Progress = gr.Progress()):
        if not video:
            return None, [], None, "", [], None, "", None
        try:
            outputs = track_video(video, config, tracker, progress)
        except ValueError as error:  # VideoRejected, bad frames, ...: the message is written for the user
            raise gr.Error(user_message(error, video), title="Video not accepted", print_exception=False) from error
        if outputs.analysis.track.main_person_id is None:
            gr.Warning(f"No main character found: {outputs.analysis.track.reason}.", title="No face")
        return (outputs.annotated_video, outputs.crops, outputs.presence, outputs.summary, outputs.people,
                outputs.expression_plot, outputs.measured_caption, outputs.analysis)

    def follow(analysis, evt: gr.SelectData, progress: gr.Progress = gr.Progress()):
        if analysis is None or not analysis.track.persons:
            raise gr.Error("Upload a video first: the gallery shows its people once it is tracked.", title="No video")
        person_ids = sorted(analysis.track.persons)
        outputs = follow_person(analysis, person_ids[evt.index], config, progress)
        return (outputs.annotated_video, outputs.crops, outputs.presence, outputs.summary, outputs.expression_plot,
                outputs.measured_caption, outputs.analysis)

    def caption(video: str | None, analysis=None) -> Iterator[str]:
        if not video:
            yield ""
            return
        yield from captioner.stream(video, analysis)

    with gr.Blocks(title="FaceTrack-MM", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(INTRO)
        with gr.Tab("Describe a video"):
            with gr.Row():
                with gr.Column():
                    video_input = gr.Video(label="Video", sources=["upload"], elem_id="video-input")
                    example_paths, example_labels = example_videos(config)
                    gr.Examples(
                        examples=[[path] for path in example_paths],
                        inputs=video_input,
                        example_labels=example_labels,
                        label="Examples",
                    )
                    gr.Markdown(
                        f"Videos up to {config.max_duration_s:g} s and {config.max_file_mb:g} MB, frames up to 4K; "
                        f"{config.num_frames} frames are sampled.",
                        elem_id="limits",
                    )
                with gr.Column():
                    # Each output's label is also its name in the API (`gradio_client`): short and meaningful; what
                    # the thick box marks is said in the summary, which is redrawn for whoever is followed.
                    annotated_video = gr.Video(label="Tracked faces", interactive=False, elem_id="annotated-video")
                    summary = gr.Markdown(label="Summary", elem_id="track-summary")
            with gr.Row():
                measured_box = gr.Textbox(label="Measured description", info=MEASURED_CAPTION_INFO, lines=7,
                                          interactive=False, elem_id="measured-caption")
                if captioner is None:
                    caption_box = None
                    gr.Markdown(NO_MODEL_MESSAGE, elem_id="no-model-message")
                else:
                    caption_box = gr.Textbox(
                        label="Model caption",
                        info=f"Generated by the caption model `{model_name(config.model_path)}`, streamed as it "
                        "is written.",
                        lines=7,
                        interactive=False,
                        elem_id="caption",
                    )
                    if captioner.notice:  # what the model is, from its card: said where its captions are read
                        gr.Markdown(captioner.notice, elem_id="model-notice")
            people = gr.Gallery(
                label="People", columns=6, height=190, allow_preview=False, fit_columns=False, object_fit="contain",
                elem_id="people",
            )
            crops = gr.Gallery(label="Face crops", columns=8, height=320, elem_id="face-crops")
            expression_plot = gr.Plot(  # the figure carries its own title (whose timeline, how many events)
                label="Expression timeline", show_label=False, format="png", elem_id="expression-plot",
            )
            presence = gr.LinePlot(
                x="time_s",
                y="face_height_pct",
                color="track",
                title="Face presence and size over time (0 = not in frame)",
                x_title="time (s)",
                y_title="face height (% of frame)",
                y_lim=[0, 100],
                height=260,
                label="Face presence",
                show_label=False,  # the plot's title says it
                elem_id="presence-plot",
            )
            # The decoded clip and its track (objects, server side): the gallery and the caption step reuse them.
            analysis_state = gr.State(time_to_live=OLD_OUTPUT_SECONDS)

            tracked = video_input.change(
                track,
                inputs=video_input,
                outputs=[annotated_video, crops, presence, summary, people, expression_plot, measured_box,
                         analysis_state],
                api_name="track",
            )
            followed = people.select(
                follow,
                inputs=analysis_state,
                outputs=[annotated_video, crops, presence, summary, expression_plot, measured_box, analysis_state],
                api_visibility="private",  # a click in the page; API users pass a target to the processor
            )
            if caption_box is not None:
                # A new video clears the previous caption at once (no queue, not part of the API).
                video_input.change(lambda: "", outputs=caption_box, queue=False, api_visibility="private")
                tracked.success(
                    gpu_task(caption), inputs=[video_input, analysis_state], outputs=caption_box, api_name="caption"
                )
                followed.then(lambda: "", outputs=caption_box, queue=False, api_visibility="private").success(
                    gpu_task(caption), inputs=[video_input, analysis_state], outputs=caption_box,
                    api_visibility="private",
                )
        with gr.Tab("Score a caption (TEM)"):
            sources = [("Score the measured description", measured_box, "tem-use-measured")]
            if caption_box is not None:
                sources.append(("Score the model's caption", caption_box, "tem-use-model"))
            build_tem_tab(sources)
    demo.queue(default_concurrency_limit=config.concurrency_limit, max_size=32)
    demo.facetrack_config = config  # read by launch_demo
    return demo


def model_name(model_path: str) -> str:
    """How the page names the caption model: a Hub id as it is; a local folder by its last two parts (a folder called
    "model" alone said "the model model")."""
    path = Path(model_path)
    if not path.exists():
        return model_path
    return "/".join(path.resolve().parts[-2:])


def launch_demo(demo: gr.Blocks, server_name: str | None = None, server_port: int | None = None, **kwargs):
    """Launch with the demo's limits; only Gradio's own cache is served (no extra allowed_paths)."""
    config: DemoConfig = demo.facetrack_config
    return demo.launch(
        server_name=server_name,
        server_port=server_port,
        max_file_size=int(config.max_file_mb * 1_000_000),  # bytes
        footer_links=["api", "gradio"],
        theme=gr.themes.Soft(),
        **kwargs,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="FaceTrack-MM Gradio demo")
    parser.add_argument("--model", help="Hub id or local folder of the caption model (default: $FACETRACK_MODEL)")
    parser.add_argument("--host", help="address to listen on (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: $GRADIO_SERVER_PORT or the first free from 7860)")
    parser.add_argument("--num-frames", type=int, help="frames sampled per video (default: 16 on CPU, 32 on GPU)")
    args = parser.parse_args(argv)
    try:
        demo = build_demo(model_path=args.model, num_frames=args.num_frames)
    except ValueError as error:  # a bad setting or an unloadable model: one readable line, no traceback
        parser.exit(2, f"space/app.py: error: {error}\n")
    launch_demo(demo, server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
