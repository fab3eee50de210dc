"""The one analysis pipeline (`analyze_video`: decode, track, follow a person, crop, measure expressions) and what is drawn from it (overlay videos)."""
