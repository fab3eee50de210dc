"""What a training run is told: the recipe's data and model arguments (beside TRL's `SFTConfig`), parsed from
`--config recipe.yaml` and flags with TRL's `TrlParser`, and checked before anything loads. Bad values are one line
naming the key (`TrainingSetupError`), never argparse's full usage."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from facetrack.expressions.features import EXPRESSION_COLUMN_CHOICES

DEFAULT_LORA_TARGET_REGEX = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
# The recipes that ship inside the package (also in a wheel): `--config tiny_cpu` names one of them.
RECIPES_DIR = Path(__file__).resolve().parent / "recipes"


class TrainingSetupError(ValueError):
    """A recipe or command-line choice that cannot work; the message names the key and the problem."""


@dataclass
class ScriptArguments:
    """Data choices."""

    dataset_name: str | None = field(
        default=None,
        metadata={"help": "Dataset built by `facetrack dataset build`: a local folder or a Hub dataset repo id."},
    )
    dataset_train_split: str = field(default="train", metadata={"help": "Split to train on."})
    dataset_eval_split: str | None = field(default=None, metadata={"help": "Split to evaluate on (optional)."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Train on the first N rows only."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Evaluate on the first N rows only."})
    num_frames: int | None = field(
        default=None,
        metadata={
            "help": "Frames per video. None: the frames of the precomputed face track (set at build time with "
            "--num-frames); fewer takes a uniform subset of them."
        },
    )
    cpu_threads: int | None = field(
        default=None,
        metadata={
            "help": "torch CPU threads (torch.set_num_threads). 1 suits tiny models: with tiny tensors the thread "
            "pool's overhead outweighs the parallelism, badly so on a shared machine."
        },
    )
    timeline_variants: bool = field(
        default=False,
        metadata={
            "help": "Train on montages of each row's measured timeline (windows, re-timed, reversed, mirrored, cut "
            "together), drawn anew at every step, each captioned by its own measurements (weak labels). For models "
            "that read the expression stream alone; rows are repeated so that batches are full."
        },
    )
    variant_frame_counts: str = field(
        default="8,12,16", metadata={"help": "With timeline_variants: the frame counts a montage is sampled to."}
    )
    variant_part_counts: str = field(
        default="1,1,2", metadata={"help": "With timeline_variants: how many pieces a montage has (drawn from these)."}
    )
    variant_max_seconds: float = field(
        default=5.0, metadata={"help": "With timeline_variants: the longest piece, in the source clip's seconds."}
    )
    variant_other_clip_share: float = field(
        default=0.5,
        metadata={"help": "With timeline_variants: the share of a montage's pieces taken from another row's clip."},
    )
    measure_jitter: float = field(
        default=0.0,
        metadata={"help": "Expression stream: each training video's raw measure columns get a random gain and offset "
                  "of this sigma (the rule columns and the caption do not change): 0 = as measured."},
    )
    variant_no_face_share: float = field(
        default=0.0,
        metadata={"help": "With timeline_variants: the share of montages cut, at their start or end, to 0.5-3 s "
                  "where no face is visible (a title card, a cutaway)."},
    )
    variant_script_share: float = field(
        default=0.0,
        metadata={"help": "With timeline_variants: the share of montages scripted from stretches of frames by their "
                  "rule states (2-5 states in an order no clip shows, 0.6-2.5 s each)."},
    )
    face_source: str = field(
        default="precomputed",
        metadata={
            "help": "'precomputed': crop the faces at the dataset's face_track boxes (fast). 'detect': run the face "
            "detector + tracker on every clip at each step (slow; for comparison)."
        },
    )


@dataclass
class ModelArguments:
    """Model choices: where to start from and which parts train."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "A Hub-layout FaceTrack-MM folder or repo id to start from."}
    )
    tiny_language_model: str | None = field(
        default=None,
        metadata={
            "help": "Without model_name_or_path: build a tiny FaceTrack-MM with this LLM ('random' or 'smollm2', "
            "see facetrack.hub.build_tiny_model) into tiny_model_dir and start from it."
        },
    )
    tiny_tokenizer: str | None = field(
        default=None,
        metadata={
            "help": "Tokenizer of the tiny model: 'trained' (a 512-token BPE: fast on CPU) or 'smollm2' (49k tokens); "
            "default: facetrack.hub's choice."
        },
    )
    tiny_model_dir: str | None = field(
        default=None, metadata={"help": "Where the tiny model is built (default: <output_dir>-tiny-base)."}
    )
    dtype: str = field(
        default="auto", metadata={"help": "Weights dtype: 'auto' (as saved), 'float32', 'bfloat16' or 'float16'."}
    )
    face_tokens_per_frame: int | None = field(
        default=None,
        metadata={
            "help": "Face tokens per frame (a perfect square). Only when building a tiny model, or equal to the "
            "pretrained model's: the face projector and the no-face embedding are sized by it."
        },
    )
    global_tokens_per_frame: int | None = field(
        default=None, metadata={"help": "Global tokens per frame of a tiny model built for the run (0: none)."}
    )
    expression_tokens_per_frame: int | None = field(
        default=None,
        metadata={"help": "Expression-stream tokens per frame of a tiny model built for the run (0: no stream)."},
    )
    expression_columns: str = field(
        default="all",
        metadata={"help": "The feature columns the expression projector of a tiny model built for the run reads: "
                  "'all', or 'rules' (the state, event and time columns the measured caption is written from, the "
                  "same on every face)."},
    )
    timestamps: bool = field(
        default=True,
        metadata={"help": "Whether a tiny model built for the run writes each frame's time (<t=1.5s>) in the prompt."},
    )
    phase_labels: bool = field(
        default=False,
        metadata={"help": "Whether a tiny model built for the run with the expression stream writes the caption's "
                  "phase words ('At the beginning: ...') before each phase's frames in the prompt."},
    )
    train_vision_tower: bool = field(default=False, metadata={"help": "Train the vision encoder (frozen by default)."})
    train_projectors: bool = field(
        default=True, metadata={"help": "Train the video and face projectors and the no-face embedding."}
    )
    train_language_model: bool = field(
        default=True, metadata={"help": "Train the full LLM (ignored with use_peft: then only the LoRA adapters)."}
    )
    projector_lr: float | None = field(
        default=None, metadata={"help": "Learning rate of the projectors (default: the learning_rate)."}
    )
    use_peft: bool = field(default=False, metadata={"help": "Train the LLM through LoRA adapters (peft)."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_target_modules: str = field(
        default=DEFAULT_LORA_TARGET_REGEX,
        metadata={"help": "Regex (peft target_modules) of the linear layers that get adapters (the LLM's)."},
    )
    merge_lora: bool = field(
        default=True, metadata={"help": "With use_peft, also save the merged model in <output_dir>/merged."}
    )


def recipe_path(name: str) -> Path:
    """A shipped recipe by name (`"tiny_cpu"`, `"tiny_cpu.yaml"`), or `name` itself when it is a file's path."""
    path = Path(name)
    if path.is_file() or len(path.parts) > 1:
        return path
    shipped = RECIPES_DIR / (name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")
    if not shipped.is_file():
        known = ", ".join(sorted(p.stem for p in RECIPES_DIR.glob("*.yaml")))
        raise TrainingSetupError(f"--config {name}: no such file, and no shipped recipe of that name ({known})")
    return shipped


def parse_arguments(argv: list[str] | None = None):
    """(ScriptArguments, ModelArguments, SFTConfig) from `--config recipe.yaml` and/or flags (flags win)."""
    from trl import SFTConfig, TrlParser

    class OneLineErrorParser(TrlParser):
        """argparse prints the whole usage (~150 lines here) before a bad value's message; one line is enough."""

        def error(self, message: str):
            raise TrainingSetupError(f"{message} (see `facetrack train --help`)")

    parser = OneLineErrorParser((ScriptArguments, ModelArguments, SFTConfig))
    args = []
    for arg in sys.argv[1:] if argv is None else argv:  # --config=PATH is the same as --config PATH
        args.extend(arg.split("=", 1) if arg.startswith("--config=") else [arg])
    if not {"--config", "--dataset_name", "-h", "--help"} & set(args):
        raise TrainingSetupError(
            "give a recipe (--config tiny_cpu, a shipped recipe, or a copy of it) or at least --dataset_name; "
            "see `facetrack train --help`"
        )
    if "--config" in args:
        position = args.index("--config") + 1
        config_path = str(recipe_path(args[position])) if position < len(args) else ""
        if position < len(args):
            args[position] = config_path
        check_recipe_keys(parser, config_path)
    try:
        script_args, model_args, training_args = parser.parse_args_and_config(args)
    except ValueError as error:
        raise TrainingSetupError(str(error).strip().splitlines()[0]) from error
    validate_arguments(script_args, model_args, training_args)
    # Required for video rows: keep every column for the collator, which also owns tokenisation and labels.
    training_args.remove_unused_columns = False
    training_args.dataset_kwargs = {**(training_args.dataset_kwargs or {}), "skip_prepare_dataset": True}
    return script_args, model_args, training_args


def check_recipe_keys(parser, config_path: str) -> None:
    """A recipe file that TrlParser can read, every key of it an argument: one line naming the problem. TrlParser
    finds unknown keys itself, but only after building the dataclasses, so a typo would show up as what its absence
    causes (with no `use_cpu` key, say, SFTConfig's bf16 check on a machine without a GPU); its own
    `set_defaults_with_config` names them first."""
    import yaml

    if not Path(config_path).is_file():
        raise TrainingSetupError(f"recipe file not found: {config_path!r}")
    try:
        recipe = yaml.safe_load(Path(config_path).read_text())
    except yaml.YAMLError as error:
        raise TrainingSetupError(f"recipe {config_path} is not valid YAML: {str(error).splitlines()[0]}") from error
    if not isinstance(recipe, dict):
        raise TrainingSetupError(f"recipe {config_path} must be a YAML mapping of key: value")
    recipe.pop("env", None)  # environment variables, which TrlParser sets
    unknown = parser.set_defaults_with_config(**recipe)[::2]  # ["--key", "value", ...]
    if unknown:
        names = ", ".join(sorted(flag.removeprefix("--") for flag in unknown))
        raise TrainingSetupError(f"unknown key(s) in recipe {config_path}: {names} (see `facetrack train --help`)")


def validate_arguments(script_args: ScriptArguments, model_args: ModelArguments, training_args) -> None:
    """Values the dataclasses accept but training cannot use: refused by name before anything loads."""
    problems = []

    def at_least(name: str, value, minimum, allow_none: bool = True) -> None:
        if value is None and allow_none:
            return
        if value is None or value < minimum:
            problems.append(f"{name} must be at least {minimum}, got {value}")

    if training_args.max_steps == 0 or training_args.max_steps < -1:
        problems.append(
            f"max_steps must be a positive number of steps, or -1 to train num_train_epochs epochs; got "
            f"{training_args.max_steps}"
        )
    if training_args.max_steps == -1 and not training_args.num_train_epochs > 0:
        problems.append(f"num_train_epochs must be > 0 (with max_steps -1), got {training_args.num_train_epochs}")
    if not training_args.learning_rate > 0:
        problems.append(f"learning_rate must be > 0, got {training_args.learning_rate}")
    at_least("per_device_train_batch_size", training_args.per_device_train_batch_size, 1, allow_none=False)
    at_least("gradient_accumulation_steps", training_args.gradient_accumulation_steps, 1, allow_none=False)
    at_least("max_length", training_args.max_length, 1)
    at_least("num_frames", script_args.num_frames, 1)
    at_least("max_train_samples", script_args.max_train_samples, 1)
    at_least("max_eval_samples", script_args.max_eval_samples, 1)
    at_least("cpu_threads", script_args.cpu_threads, 1)
    at_least("lora_r", model_args.lora_r, 1, allow_none=False)
    for name in ("variant_frame_counts", "variant_part_counts"):
        try:
            counts = parse_counts(getattr(script_args, name))
        except ValueError:
            counts = []
        if not counts or min(counts) < (2 if name == "variant_frame_counts" else 1):
            problems.append(f"{name} must be comma-separated whole numbers (at least "
                            f"{2 if name == 'variant_frame_counts' else 1}), got {getattr(script_args, name)!r}")
    if not script_args.variant_max_seconds > 0:
        problems.append(f"variant_max_seconds must be > 0, got {script_args.variant_max_seconds}")
    if not 0 <= script_args.variant_other_clip_share <= 1:
        problems.append(f"variant_other_clip_share must be in [0, 1], got {script_args.variant_other_clip_share}")
    if not script_args.measure_jitter >= 0:
        problems.append(f"measure_jitter must be >= 0, got {script_args.measure_jitter}")
    if not 0 <= script_args.variant_script_share <= 1:
        problems.append(f"variant_script_share must be in [0, 1], got {script_args.variant_script_share}")
    if not 0 <= script_args.variant_no_face_share <= 1:
        problems.append(f"variant_no_face_share must be in [0, 1], got {script_args.variant_no_face_share}")
    at_least("global_tokens_per_frame", model_args.global_tokens_per_frame, 0)
    at_least("expression_tokens_per_frame", model_args.expression_tokens_per_frame, 0)
    if model_args.expression_columns not in EXPRESSION_COLUMN_CHOICES:
        problems.append(f"expression_columns must be one of {', '.join(EXPRESSION_COLUMN_CHOICES)}, got "
                        f"{model_args.expression_columns!r}")
    if script_args.face_source not in ("precomputed", "detect"):
        problems.append(f"face_source must be 'precomputed' or 'detect', got {script_args.face_source!r}")
    if not 0 <= model_args.lora_dropout < 1:
        problems.append(f"lora_dropout must be in [0, 1), got {model_args.lora_dropout}")
    if model_args.projector_lr is not None and not model_args.projector_lr > 0:
        problems.append(f"projector_lr must be > 0, got {model_args.projector_lr}")
    if problems:
        raise TrainingSetupError("; ".join(problems))


def parse_counts(text: str) -> list[int]:
    """"8,12,16" -> [8, 12, 16] (ValueError on anything else)."""
    return [int(part) for part in str(text).split(",") if part.strip()]
