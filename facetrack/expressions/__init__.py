"""Facial expressions of a tracked face: per-frame measures from pretrained face models (MediaPipe FaceLandmarker, fer), events, the measured caption and the report."""
