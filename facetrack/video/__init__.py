"""Video in and out: probe a file's header, decode and sample frames (decord, PyAV), per-frame work on threads, shot cuts, square face crops."""
