"""Evaluation: the TEM metric (`tem/`) and the FEC-Bench benchmark."""
