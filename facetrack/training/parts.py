"""Which parts of FaceTrack-MM train, and how: the vision tower is frozen by default, the projectors train, the LLM
trains fully or through LoRA (peft `LoraConfig`, given to SFTTrainer as its `peft_config`), and the projectors can
have a learning rate of their own (`FaceTrackSFTTrainer`)."""

from __future__ import annotations

from transformers import Trainer
from trl import SFTTrainer

from facetrack.training.config import ModelArguments, TrainingSetupError

# FaceTrackForConditionalGeneration's parts (modeling_facetrack), by the module names in their parameters' names.
# Names are matched by their dot-separated pieces, so peft's wrapped names (base_model.model.model.face_projector.
# modules_to_save.default.weight, ...) belong to the same parts as the plain ones.
PART_MODULES = {
    "vision": ("vision_tower",),
    "projector": ("video_projector", "face_projector", "no_face_embedding", "video_newline_embedding",
                  "expression_projector", "no_expression_embedding"),
    "language_model": ("language_model", "lm_head"),
}
# The projector modules LoRA trains beside its adapters (those a model lacks are not matched).
PROJECTOR_MODULES = ["video_projector", "face_projector", "expression_projector"]


def parameter_part(name: str) -> str:
    """Which part a parameter belongs to: 'vision', 'projector' or 'language_model'."""
    pieces = set(name.split("."))
    for part, modules in PART_MODULES.items():
        if pieces.intersection(modules):
            return part
    raise TrainingSetupError(f"parameter {name!r} belongs to no known FaceTrack-MM part")


def set_trainable_parts(model, model_args: ModelArguments) -> dict[str, int]:
    """Freeze / unfreeze the parts; returns trainable parameter counts per part."""
    trains = {
        "vision": model_args.train_vision_tower,
        "projector": model_args.train_projectors,
        # With LoRA the LLM's base weights stay frozen; peft adds and trains the adapters.
        "language_model": model_args.train_language_model and not model_args.use_peft,
    }
    counts = {part: 0 for part in trains}
    for name, parameter in model.named_parameters():
        part = parameter_part(name)
        parameter.requires_grad_(trains[part])
        counts[part] += parameter.numel() if trains[part] else 0
    if not any(trains.values()) and not model_args.use_peft:
        raise TrainingSetupError("nothing to train: every part is frozen and use_peft is off")
    return counts


def lora_config(model_args: ModelArguments):
    """peft `LoraConfig` for the LLM; the projectors train beside it as `modules_to_save` (saved in the adapter)."""
    from peft import LoraConfig

    if model_args.train_vision_tower:
        raise TrainingSetupError("train_vision_tower with use_peft is not supported: LoRA adapts the LLM only")
    return LoraConfig(
        r=model_args.lora_r,
        lora_alpha=model_args.lora_alpha,
        lora_dropout=model_args.lora_dropout,
        target_modules=model_args.lora_target_modules,
        modules_to_save=list(PROJECTOR_MODULES) if model_args.train_projectors else None,
        task_type="CAUSAL_LM",
    )


class FaceTrackSFTTrainer(SFTTrainer):
    """SFTTrainer with an optional learning rate of its own for the projectors (`projector_lr`; None: the
    learning_rate, and SFTTrainer's own optimizer), and the model's own loss on CPU (`compute_loss`)."""

    projector_lr: float | None = None

    def __init__(self, *args, projector_lr: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.projector_lr = projector_lr

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # TRL's fused LM head spares GPU memory by scoring the vocabulary in chunks (log-probs, entropy, top-1).
        # Without Triton it scores every position, padding included, in torch ops and computes the logits again in
        # the backward pass: a quarter of a CPU step of the quickstart's recipe (benchmarks/README.md). On CPU the
        # model's own loss (the same value) is used, as Trainer computes it; TRL's entropy and token-accuracy
        # metrics are then not logged.
        if self.args.device.type == "cpu":
            return Trainer.compute_loss(self, model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
        return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                    num_items_in_batch=num_items_in_batch)

    def create_optimizer(self, model=None):
        if self.projector_lr is None or self.optimizer is not None:
            return super().create_optimizer(model)
        opt_model = self.model if model is None else model
        decay = set(self.get_decay_parameter_names(opt_model))
        groups: dict[tuple[bool, bool], list] = {}
        for name, parameter in opt_model.named_parameters():
            if parameter.requires_grad:
                groups.setdefault((parameter_part(name) == "projector", name in decay), []).append(parameter)
        param_groups = [
            {
                "params": params,
                "weight_decay": self.args.weight_decay if with_decay else 0.0,
                **({"lr": self.projector_lr} if is_projector else {}),
            }
            for (is_projector, with_decay), params in groups.items()
        ]
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
        self.optimizer = optimizer_cls(param_groups, **optimizer_kwargs)
        return self.optimizer
