"""FaceTrack-MM: track the main character's face through a video and describe their facial expression dynamics."""

__version__ = "0.1.0"
