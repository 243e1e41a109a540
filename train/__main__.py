"""``python -m train <config.toml> [--set key=value] [--resume]``; under torchrun, one process per device."""

import sys

from train.cli import main

sys.exit(main(process_exits_after=True))
