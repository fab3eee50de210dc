"""TEM (Temporal Event Matching) as an `evaluate` module: `evaluate.load("evaluate_metric/tem")`.

The metric is implemented once, in the `facetrack-mm` package (`facetrack.evaluation.tem`); this file is its entry
point in the layout `evaluate` and the Hub expect (this folder: the module, its card README.md, the demo app.py and
requirements.txt). README.md specifies every step, so the metric can be re-implemented without this code.
"""

from facetrack.evaluation.tem.metric import TEM
