#!/usr/bin/env bash
# One device session: the GPU checks of the project in one go (docs/conan_model.md, docs/harness.md, docs/training.md).
# Usage on the device machine, from the repository root:  OUT=/some/dir bash benchmarks/gpu_session.sh
# Default (issue 16, ~5 min on an H200): the FlexAttention gradient test, then benchmarks/gpu_speed.py (flex vs
# bias, MFU eager vs compiled, end-to-end encode, harness run) -> $OUT/gpu_speed_<card>.json and its log.
# The device image lacks mteb and ../shared/data: benchmarks/device_bundle.py (run here first) puts them in
# carry-sized folders under .cache/device/, and the work splits in two calls (each carry <= 64 MiB):
#   PART=1 (carry .cache/device/wheels-call1): installs mteb's needs and checks they import, then runs the flex
#           test, flex and mfu;
#   PART=2 (carry .cache/device/{wheels-call2,shared-data,minilm-shape}): installs mteb, runs encode and harness.
# Wheels install into .cache/device/site, which a warm machine keeps between the calls.
# DATA=<folder> passes --data-dir (default: .cache/device/shared-data when it is there).
# ALL=1 also reruns the earlier checks (gpu_model.py eager and compiled, gpu_train.py; ~13 min more).
set -o pipefail
OUT=$(mkdir -p "${OUT:-benchmarks/results}" && cd "${OUT:-benchmarks/results}" && pwd)
SITE=$PWD/.cache/device/site
for wheels in .cache/device/wheels-call1 .cache/device/wheels-call2; do
  stamp=$SITE/.installed-$(basename "$wheels")  # what a call before this one installed (a warm machine keeps it)
  if ls "$wheels"/*.whl >/dev/null 2>&1 && [ "$(ls "$wheels")" != "$(cat "$stamp" 2>/dev/null)" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
      "$wheels"/*.whl || { echo "installing $wheels failed"; exit 1; }
    ls "$wheels" > "$stamp"
  fi
done
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}${SITE:+:$SITE} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
DATA=${DATA:-$( [ -d .cache/device/shared-data ] && echo .cache/device/shared-data )}
SHAPE=$( [ -d .cache/device/minilm-shape ] && echo .cache/device/minilm-shape )
case "${PART:-all}" in
  1) PARTS="--only flex --only mfu" ;;
  2) PARTS="--only encode --only harness" ;;
  *) PARTS="" ;;
esac
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no cuda')"
if [ -d "$SITE" ]; then  # the carried wheels beside the image's own packages: a failure here names what to carry
  python3 -m pip list 2>/dev/null | grep -iE "^(pyarrow|fsspec|huggingface.hub|transformers|sentence.transformers|pandas) "
  python3 -c "import datasets, polars, pydantic, pytrec_eval; print('mteb needs import: datasets', datasets.__version__)" \
    2>&1 | tail -3 | tee "$OUT/device_imports.log"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
status=0
# flex vs bias: outputs and gradients on the GPU (torch has no FlexAttention backward on CPU, where it skips)
if [ "${PART:-all}" != 2 ]; then
  timeout 120 python3 -m pytest -q -p no:cacheprovider tests/conan_model/test_conan_flex.py 2>&1 \
    | tee "$OUT/gpu_flex_test.log" || status=1
fi
timeout 330 python3 benchmarks/gpu_speed.py --out "$OUT" $PARTS ${DATA:+--data-dir "$DATA"} \
  ${SHAPE:+--minilm-shape "$SHAPE"} 2>&1 | grep -v "torch/_dynamo\|^  File" | tee "$OUT/gpu_speed${PART:+_part$PART}.log" || status=1
if [ -n "${ALL:-}" ]; then
  cd benchmarks
  timeout 240 python3 gpu_model.py --out "$OUT/gpu_model.json" 2>&1 | tee "$OUT/gpu_model.log" || status=1
  # the encode target is met with torch.compile (the eager run stays below it on H100 and H200)
  timeout 300 python3 gpu_model.py --compile --iters 6 --out "$OUT/gpu_model_compile.json" 2>&1 \
    | grep -v "torch/_dynamo\|^  File" | tee "$OUT/gpu_model_compile.log" || status=1
  timeout 240 python3 gpu_train.py --out "$OUT/gpu_train.json" 2>&1 | tee "$OUT/gpu_train.log" || status=1
fi
exit $status
