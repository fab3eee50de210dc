"""Faces: detect them (detectors from pip packages), track them frame to frame, tell people apart by identity, choose the main character or the person asked for."""
