"""Dataset releases: the row schema and prompts, the build from annotated or unlabelled videos, the dataset card, crash-safe writes."""
