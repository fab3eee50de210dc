"""Instruction-tune FaceTrack-MM with TRL's SFTTrainer.

    python train_sft.py --config tiny_cpu
    python train_sft.py --config tiny_cpu --max_steps 10 --output_dir runs/try
    accelerate launch --config_file facetrack/training/recipes/accelerate/deepspeed_zero3.yaml train_sft.py --config paper_7b

Every recipe key is also a flag (`python train_sft.py --help` lists them). The run itself is facetrack/training.py
(also `facetrack train`), which reads top to bottom: parse, data, model, trainer, save.
"""

import sys

from facetrack.training.run import cli_main

if __name__ == "__main__":
    sys.exit(cli_main())
