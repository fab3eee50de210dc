"""TEM (Temporal Event Matching): the metric of FEC-Bench, specified in evaluate_metric/tem/README.md."""
