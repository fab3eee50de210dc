"""Instruction tuning with TRL's SFTTrainer (`run.py` reads top to bottom); the shipped recipes are in `recipes/`."""
