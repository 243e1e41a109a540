"""Evaluation harness for MTEB / C-MTEB tasks (see docs/)."""

import time

__version__ = "0.1.0"
# the wall clock when this process first imported the harness, the frame file times are in: `harness ablate` refuses
# project files written after it (harness.ablate.import_all_code)
IMPORTED_AT = time.time()
