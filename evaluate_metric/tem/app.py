"""The TEM metric's demo (`python app.py`): a caption and a reference in, the scores and the matched-event table out.
The UI is the one the FaceTrack-MM Space's TEM tab shows too (`facetrack.evaluation.tem.scoring_ui`)."""

from facetrack.evaluation.tem.scoring_ui import build_demo

if __name__ == "__main__":
    build_demo().launch()
