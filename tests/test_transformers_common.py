"""transformers' own common tests (`ModelTesterMixin`, `GenerationTesterMixin`, `ProcessorTesterMixin`,
`ConfigTester`), run against a tiny FaceTrack-MM: what every model in transformers must pass.

Their code is not in the transformers wheel. `bash scripts/setup.sh --test` extracts the `tests/` folder of the
installed version's sdist into `.venv/transformers-tests/<version>/` (or set FACETRACK_TRANSFORMERS_TESTS to a
transformers checkout's `tests/`); without it this module skips. The sdist lacks `tests/generation/test_utils.py`
(`GenerationTesterMixin`), `tests/exporters/test_export.py`, `tests/utils/test_configuration_utils.py` and
`utils/fetch_hub_objects_for_ci.py`: where a file is missing, a stand-in below takes its place (an empty mixin, so
those tests are absent, not faked), and README.md ("transformers' common tests") lists what does not apply and why.

The tiny model: 3 prompts of one video each, 2 frames per video (frames flattened, `video_num_frames` = [2, 2, 2]),
4 global + 1 face tokens per frame, faces missing in some frames; and the same tests on a tiny model with the
expression stream alone (no vision tower: 2 expression tokens per frame, some frames unmeasured).
"""

from __future__ import annotations

import importlib
import os
import sys
import types
import unittest
from pathlib import Path

import pytest
import torch
import transformers

REPO_ROOT = Path(__file__).resolve().parents[1]
TESTS_DIR = Path(
    os.environ.get("FACETRACK_TRANSFORMERS_TESTS")
    or Path(sys.prefix) / "transformers-tests" / transformers.__version__ / "tests"
)
if not (TESTS_DIR / "test_modeling_common.py").is_file():
    pytest.skip(
        f"transformers' common test files are not at {TESTS_DIR}: run `bash scripts/setup.sh --test` (it extracts "
        f"them from the transformers {transformers.__version__} sdist on PyPI)",
        allow_module_level=True,
    )
pytest.importorskip("parameterized", reason="transformers' test files need `parameterized` (scripts/setup.sh --test)")

# transformers' tests import each other relatively: load their folder as a package of its own name.
PACKAGE = "transformers_common_tests"
package = types.ModuleType(PACKAGE)
package.__path__ = [str(TESTS_DIR)]
sys.modules.setdefault(PACKAGE, package)


def stand_in(name: str, **attributes) -> None:
    """Register module `PACKAGE.name` (and its parent packages) unless the real file is there."""
    if (TESTS_DIR / (name.replace(".", "/") + ".py")).is_file():
        return
    parts = name.split(".")
    for depth in range(1, len(parts)):
        parent = ".".join([PACKAGE, *parts[:depth]])
        if parent not in sys.modules:
            module = types.ModuleType(parent)
            module.__path__ = [str(TESTS_DIR.joinpath(*parts[:depth]))]
            sys.modules[parent] = module
    module = types.ModuleType(f"{PACKAGE}.{name}")
    module.__dict__.update(attributes)
    sys.modules[module.__name__] = module


class MissingGenerationTesterMixin:
    """Stands in for `tests/generation/test_utils.GenerationTesterMixin`, which no transformers sdist ships."""


HAS_GENERATION_TESTS = (TESTS_DIR / "generation" / "test_utils.py").is_file()
stand_in("exporters.test_export", ExportTesterMixin=type("ExportTesterMixin", (), {}))
stand_in("generation.test_utils", GenerationTesterMixin=MissingGenerationTesterMixin)
# Keys every PreTrainedConfig takes (what transformers' own list checks `config_common_kwargs` with).
stand_in("utils.test_configuration_utils", config_common_kwargs={
    "return_dict": False, "output_hidden_states": True, "output_attentions": True, "dtype": "float16",
    "chunk_size_feed_forward": 5, "is_encoder_decoder": True,
})

# `fetch_hub_objects_for_ci.url_to_local_path` maps the Hub media the processor tests use to local files: here the
# real clips in tests/media (a video URL gets a real video, an image URL a frame of one); no test reaches the Hub.
MEDIA_DIR = REPO_ROOT / "tests" / "media"


def url_to_local_path(url, return_url_if_not_found: bool = True):
    name = str(url).rsplit("/", 1)[-1]
    if name.endswith((".mp4", ".mov", ".avi", ".mkv")):
        return str(MEDIA_DIR / "face_noface.mov")
    if name.endswith((".png", ".jpg", ".jpeg")):
        return str(frame_image_path())
    return url


def frame_image_path() -> Path:
    """One real frame of a shipped clip, as a JPEG file (built once)."""
    path = Path(sys.prefix) / "transformers-tests" / "face_noface_frame0.jpg"
    if not path.is_file():
        from PIL import Image

        from facetrack.video.decode import load_video

        frame = load_video(str(MEDIA_DIR / "face_noface.mov"), num_frames=1).frames[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(frame).save(path)
    return path


if "fetch_hub_objects_for_ci" not in sys.modules:
    sys.modules["fetch_hub_objects_for_ci"] = types.ModuleType("fetch_hub_objects_for_ci")
    sys.modules["fetch_hub_objects_for_ci"].url_to_local_path = url_to_local_path

test_configuration_common = importlib.import_module(f"{PACKAGE}.test_configuration_common")
test_modeling_common = importlib.import_module(f"{PACKAGE}.test_modeling_common")
test_processing_common = importlib.import_module(f"{PACKAGE}.test_processing_common")
GenerationTesterMixin = importlib.import_module(f"{PACKAGE}.generation.test_utils").GenerationTesterMixin
ConfigTester = test_configuration_common.ConfigTester
ModelTesterMixin = test_modeling_common.ModelTesterMixin
ProcessorTesterMixin = test_processing_common.ProcessorTesterMixin
floats_tensor, ids_tensor = test_modeling_common.floats_tensor, test_modeling_common.ids_tensor

from facetrack.hub.builders import register_auto_classes  # noqa: E402
from facetrack.hub.tokenizers import FACE_TOKEN, VIDEO_TOKEN, add_facetrack_tokens, train_tiny_tokenizer  # noqa: E402
from facetrack.model.configuration_facetrack import FaceTrackConfig  # noqa: E402
from facetrack.model.modeling_facetrack import FaceTrackForConditionalGeneration, FaceTrackModel  # noqa: E402
from facetrack.model.processing_facetrack import FaceTrackProcessor  # noqa: E402
from facetrack.model.video_processing_facetrack import FaceTrackVideoProcessor  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def registered_for_transformers_tests():
    """What transformers' tests look classes up by: the Auto classes (facetrack.hub) and the model-name mapping
    that marks `FaceTrackForConditionalGeneration` as an image-text-to-text model (labels, `pooler_output` checks).
    Only while this module runs: registered classes win over a folder's remote code in `Auto*.from_pretrained(...,
    trust_remote_code=True)`, which other modules check is what users get."""
    from transformers.models.auto import configuration_auto, modeling_auto, processing_auto

    registries = [value for module in (configuration_auto, modeling_auto, processing_auto)
                  for value in vars(module).values() if hasattr(value, "_extra_content")]
    saved = [(registry, dict(registry._extra_content)) for registry in registries]
    names = {key: dict(getattr(modeling_auto, key))
             for key in ("MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES", "MODEL_MAPPING_NAMES")}
    register_auto_classes()
    modeling_auto.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES.setdefault(
        FaceTrackConfig.model_type, FaceTrackForConditionalGeneration.__name__
    )
    modeling_auto.MODEL_MAPPING_NAMES.setdefault(FaceTrackConfig.model_type, FaceTrackModel.__name__)
    yield
    for registry, content in saved:
        registry._extra_content.clear()
        registry._extra_content.update(content)
    for key, content in names.items():
        getattr(modeling_auto, key).clear()
        getattr(modeling_auto, key).update(content)


class FaceTrackModelTester:
    """Tiny config + inputs laid out as `FaceTrackProcessor` lays them out (ids 1 and 2 are the placeholders)."""

    def __init__(self, parent, batch_size: int = 3, num_frames: int = 2, text_length: int = 7):
        self.parent = parent
        self.batch_size = batch_size  # prompts, one video each
        self.num_frames = num_frames
        self.video_token_id, self.face_token_id, self.pad_token_id = 1, 2, 0
        self.global_tokens_per_frame, self.face_tokens_per_frame = 4, 1
        self.vision_config = {
            "model_type": "siglip_vision_model", "image_size": 16, "patch_size": 4, "num_channels": 3,
            "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4,
            "vision_use_head": False,
        }
        self.text_config = {
            "model_type": "qwen2", "vocab_size": 99, "hidden_size": 32, "intermediate_size": 37,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "max_position_embeddings": 512, "pad_token_id": self.pad_token_id, "tie_word_embeddings": False,
        }
        self.num_hidden_layers = self.text_config["num_hidden_layers"]
        self.num_attention_heads = self.text_config["num_attention_heads"]
        self.hidden_size = self.text_config["hidden_size"]
        self.vocab_size = self.text_config["vocab_size"]
        self.image_size = self.vision_config["image_size"]
        self.is_training = True
        self.tokens_per_video = num_frames * (self.global_tokens_per_frame + self.face_tokens_per_frame)
        self.seq_length = text_length + self.tokens_per_video

    def get_config(self) -> FaceTrackConfig:
        return FaceTrackConfig(
            vision_config=self.vision_config, text_config=self.text_config,
            global_tokens_per_frame=self.global_tokens_per_frame, face_tokens_per_frame=self.face_tokens_per_frame,
            video_token_id=self.video_token_id, face_token_id=self.face_token_id, vision_feature_layer=-1,
            pad_token_id=self.pad_token_id,
        )

    def prepare_config_and_inputs_for_common(self):
        config = self.get_config()
        input_ids = ids_tensor([self.batch_size, self.seq_length], self.vocab_size - 3) + 3  # no placeholder ids
        frame_tokens = [self.video_token_id] * self.global_tokens_per_frame + [self.face_token_id] * self.face_tokens_per_frame
        input_ids[:, 1 : 1 + self.tokens_per_video] = torch.tensor(frame_tokens * self.num_frames)
        total_frames = self.batch_size * self.num_frames
        face_mask = torch.tensor([index % 3 != 1 for index in range(total_frames)])  # some frames have no face
        inputs = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "pixel_values_videos": floats_tensor([total_frames, 3, self.image_size, self.image_size]),
            "pixel_values_faces": floats_tensor([total_frames, 3, self.image_size, self.image_size]),
            "face_mask": face_mask,
            "video_num_frames": torch.full((self.batch_size,), self.num_frames, dtype=torch.long),
        }
        return config, inputs


def not_applicable(test_class: type, reason: str, *name_prefixes: str) -> None:
    """Skip, with `reason`, every test of `test_class` whose name starts with one of `name_prefixes` (parameterized
    tests have one name per case). README.md ("transformers' common tests") lists the same."""
    for name in dir(test_class):
        if name.startswith(name_prefixes) and callable(getattr(test_class, name)):
            setattr(test_class, name, unittest.skip(reason)(getattr(test_class, name)))


class FaceTrackModelTest(ModelTesterMixin, GenerationTesterMixin, unittest.TestCase):
    all_model_classes = (FaceTrackModel, FaceTrackForConditionalGeneration)
    pipeline_model_mapping = {"image-text-to-text": FaceTrackForConditionalGeneration}
    _is_composite = True
    # The check is skipped for files without a copyright year (as ours); `_init_weights` covers every parameter.
    test_can_init_all_missing_weights_before_2023 = True
    # The vision tower's `post_layernorm` is never used (features come from `vision_feature_layer`, a hidden layer,
    # as in LLaVA), so it has no gradient; every other parameter's gradient is still checked.
    test_all_params_have_gradient = False

    def setUp(self):
        self.model_tester = FaceTrackModelTester(self)
        self.config_tester = ConfigTester(
            self, config_class=FaceTrackConfig, has_text_modality=False,
            common_properties=["video_token_id", "face_token_id", "global_tokens_per_frame", "face_tokens_per_frame"],
        )

    def test_config(self):
        self.config_tester.run_common_tests()


not_applicable(
    FaceTrackModelTest,
    "feeds the prompt's input_ids (placeholders included) without the visual inputs, or random ids that contain "
    "the placeholder ids; FaceTrack-MM refuses placeholders without pixel values (a clear error, not placeholder "
    "embeddings fed to the LLM), and its per-frame inputs cannot be cut to the test's batch rows",
    "test_eager_matches_sdpa_inference_", "test_model_rope_scaling_from_config",
)


class FaceTrackExpressionModelTester(FaceTrackModelTester):
    """The expression stream alone: no vision tower, no pixels; 2 `<expression>` tokens (id 3) per frame from a
    5-column feature vector, some frames unmeasured (the "no expression" embedding)."""

    def __init__(self, parent, batch_size: int = 3, num_frames: int = 2, text_length: int = 7):
        super().__init__(parent, batch_size, num_frames, text_length)
        self.expression_token_id, self.expression_tokens_per_frame = 3, 2
        self.expression_features = {"name": "test-features", "version": 1, "size": 5}
        self.tokens_per_video = num_frames * self.expression_tokens_per_frame
        self.seq_length = text_length + self.tokens_per_video

    def get_config(self) -> FaceTrackConfig:
        return FaceTrackConfig(
            vision_config=None, text_config=self.text_config, global_tokens_per_frame=0, face_tokens_per_frame=0,
            expression_tokens_per_frame=self.expression_tokens_per_frame, expression_features=self.expression_features,
            video_token_id=self.video_token_id, face_token_id=self.face_token_id,
            expression_token_id=self.expression_token_id, pad_token_id=self.pad_token_id,
        )

    def prepare_config_and_inputs_for_common(self):
        config = self.get_config()
        input_ids = ids_tensor([self.batch_size, self.seq_length], self.vocab_size - 4) + 4  # no placeholder ids
        input_ids[:, 1 : 1 + self.tokens_per_video] = self.expression_token_id
        total_frames = self.batch_size * self.num_frames
        inputs = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "expression_features": floats_tensor([total_frames, self.expression_features["size"]]),
            "expression_mask": torch.tensor([index % 3 != 1 for index in range(total_frames)]),
            "video_num_frames": torch.full((self.batch_size,), self.num_frames, dtype=torch.long),
        }
        return config, inputs


class FaceTrackExpressionModelTest(FaceTrackModelTest):
    """The same common tests on a model that reads expression tokens only (no vision tower)."""

    def setUp(self):
        self.model_tester = FaceTrackExpressionModelTester(self)
        stream = {key: getattr(self.model_tester, key) for key in
                  ("expression_tokens_per_frame", "expression_features", "expression_token_id")}
        self.config_tester = ConfigTester(
            self, config_class=FaceTrackConfig, has_text_modality=False, vision_config=None,
            global_tokens_per_frame=0, face_tokens_per_frame=0, **stream,
            common_properties=["video_token_id", "expression_token_id", "expression_tokens_per_frame"],
        )


not_applicable(
    FaceTrackExpressionModelTest,
    "checks the vision encoder's hidden states and attentions from inputs whose names contain 'video'; a model "
    "without a vision tower has no encoder and its per-frame input is expression_features (tests/"
    "test_generation_modes.py checks its get_video_features: one pooler_output per video, in frame order)",
    "test_get_video_features_",
)


class FaceTrackProcessorTest(ProcessorTesterMixin, unittest.TestCase):
    processor_class = FaceTrackProcessor

    @classmethod
    def _setup_tokenizer(cls):
        tokenizer = train_tiny_tokenizer()
        add_facetrack_tokens(tokenizer)
        return tokenizer

    @classmethod
    def _setup_video_processor(cls):
        return FaceTrackVideoProcessor(image_size=32, num_frames=4)

    @staticmethod
    def prepare_processor_dict():
        return {"global_tokens_per_frame": 4, "face_tokens_per_frame": 4, "video_token": VIDEO_TOKEN,
                "face_token": FACE_TOKEN}

    def get_component(self, attribute, **kwargs):
        # AutoVideoProcessor needs torchvision (not installed beside the CPU torch wheel): the class is this one.
        if attribute == "video_processor":
            return FaceTrackVideoProcessor.from_processor_dict(
                FaceTrackProcessor.get_processor_dict(self.tmpdirname)[0], **kwargs)
        return super().get_component(attribute, **kwargs)


not_applicable(
    FaceTrackProcessorTest,
    "expects one pixel_values_videos row per video (or a `num_frames_per_video` count); FaceTrack-MM concatenates "
    "the frames of all videos and names the count `video_num_frames` (1 video of 2 frames: 2 rows, "
    "video_num_frames=[2]; tests/test_processor.py checks it counts 1 video)",
    "test_apply_chat_template_decoded_video", "test_apply_chat_template_video_",
)
not_applicable(
    FaceTrackProcessorTest,
    "decodes every frame of a video file with do_sample_frames=False, and reads a list of image paths as frames; "
    "FaceTrack-MM refuses the first by name (give num_frames or fps) and takes frames as arrays or PIL images",
    "test_apply_chat_template_video_frame_sampling",
)
not_applicable(
    FaceTrackProcessorTest,
    "loads the video processor with AutoVideoProcessor, which needs torchvision (it does not import beside the CPU "
    "torch wheel); FaceTrackProcessor.from_pretrained loads it without",
    "test_processor_from_and_save_pretrained_as_nested_dict",
)


@pytest.mark.skipif(HAS_GENERATION_TESTS, reason="transformers' GenerationTesterMixin is present and runs")
def test_generation_tester_mixin_is_missing_from_the_sdist():
    """Says, as a test result, that GenerationTesterMixin's tests did not run (README.md says why)."""
    pytest.skip(
        f"GenerationTesterMixin: tests/generation/test_utils.py is in no transformers sdist on PyPI (checked 4.57.1, "
        f"5.0.0, {transformers.__version__}); put a transformers checkout's tests/ at FACETRACK_TRANSFORMERS_TESTS "
        "to run it"
    )
