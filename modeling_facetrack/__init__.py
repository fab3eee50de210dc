"""FaceTrack-MM configuration and model classes (copied flat into Hub repos; loaded with trust_remote_code)."""
