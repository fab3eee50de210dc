"""The FaceTrack-MM model and its HF processor: the files a Hub model folder carries (copied flat beside config.json)."""
