#!/usr/bin/env bash
# One device session: every GPU check of the project in one go (see docs/conan_model.md, docs/training.md).
# Usage on the device machine, from the repository root:  OUT=/some/dir bash benchmarks/gpu_session.sh
# Writes gpu_model.json / gpu_train.json and their logs under $OUT (default benchmarks/results).
set -o pipefail
OUT=$(mkdir -p "${OUT:-benchmarks/results}" && cd "${OUT:-benchmarks/results}" && pwd)
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no cuda')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
cd benchmarks
status=0
timeout 240 python3 gpu_model.py --out "$OUT/gpu_model.json" 2>&1 | tee "$OUT/gpu_model.log" || status=1
# the encode target is met with torch.compile (the eager run stays below it on H100 and H200)
timeout 300 python3 gpu_model.py --compile --iters 6 --out "$OUT/gpu_model_compile.json" 2>&1 \
  | grep -v "torch/_dynamo\|^  File" | tee "$OUT/gpu_model_compile.log" || status=1
timeout 240 python3 gpu_train.py --out "$OUT/gpu_train.json" 2>&1 | tee "$OUT/gpu_train.log" || status=1
exit $status
