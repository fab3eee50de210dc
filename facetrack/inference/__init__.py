"""Captioning videos with a FaceTrack-MM model, or with another video chat model (transformers or an OpenAI-compatible endpoint)."""
