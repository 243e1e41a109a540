#!/usr/bin/env bash
# One device session: the GPU checks of the project in one go (docs/conan_model.md, docs/harness.md, docs/training.md).
# Usage on the device machine, from the repository root:  OUT=/some/dir bash benchmarks/gpu_session.sh
# Default (issue 16): the FlexAttention gradient test, then benchmarks/gpu_speed.py (flex vs bias, MFU eager vs
# compiled, the eager-vs-compiled loss curve, end-to-end encode, harness run) -> $OUT/gpu_speed_<card>.json and its log.
# The device image lacks mteb and ../shared/data: benchmarks/device_bundle.py (run here first) puts them in
# carry-sized folders under .cache/device/, and the work splits in two calls (each carry <= 64 MiB):
#   PART=1 (carry .cache/device/wheels-call1): installs most of mteb's needs and checks they import, then the flex
#           test, flex and mfu (curve, 200 s over up to 10 seeds, runs in a call of its own: ONLY=curve);
#   PART=2 (carry .cache/device/{wheels-call2,shared-data,minilm-shape}): installs mteb and pydantic, checks
#           pydantic imports, runs encode, harness and prefetch.
# Wheels install into .cache/device/site, which a warm machine keeps between the calls.
# DATA=<folder> passes --data-dir (default: .cache/device/shared-data when it is there).
# ONLY="<parts>" overrides PART's parts (ONLY=none: installs only); SPEED_ARGS adds gpu_speed.py options (see below).
# DRY=1 runs the same steps on CPU (gpu_speed.py --dry-run, the flex test without its slow tier): a plumbing check;
# it installs none of the carried wheels (built for the device's Python 3.12), so it runs after device_bundle.py too.
# ALL=1 also reruns the earlier checks (gpu_model.py eager and compiled, gpu_train.py; ~13 min more).
#
# Time plan of one call (the device runs a call's command for at most 600 s; the session has 15 min of device
# time in all, machine starts included). gpu_speed.py gives each part a budget (BUDGET_S there) and stops the
# part at it, between rows, tasks and models, keeping what ran; its JSON is saved after each part and after each
# harness model. A part can overrun its budget by the row it was in (a compile, one task), which the backstop
# `timeout $SPEED_TIMEOUT` (360 s) bounds:
#   PART=1  wheel install and import check  <= ~60 s (polars' 54 MB; skipped when a warm machine has them)
#           flex test (pytest)              <= 120 s (timeout)
#           gpu_speed: flex 75 + mfu 110 = 185 s of budgets, + start-up   (backstop 360 s)
#           worst case ~545 s, expected ~300 s
#   ONLY=curve  gpu_speed: curve 200 s of budget (seeds of the fresh design, ~15 s each; SPEED_ARGS names them)
#   PART=2  mteb install                    <= ~20 s
#           gpu_speed: encode 75 (the random 1.4B checkpoint made first: tokenizer, init, save, inside the
#           budget) + harness 180 (conan, then minilm with 45 s kept for it) + prefetch 45 = 300 s (backstop 360 s)
#           worst case ~385 s, expected ~330 s
#   ONLY=shapes (with PART=2's carry)  bench_shapes.py: 3 child processes, ~60 s (backstop SHAPES_TIMEOUT 150 s)
#   Both calls expected ~680 s, leaving ~3.5 min of the 15 for the machine's start (budgets, not the backstops,
#   are what keep them inside the session). The whole-suite harness walls need a call per model (a 1.4B suite and
#   minilm's do not fit 180 s): ONLY=harness SPEED_ARGS="--budget harness=S --harness-model conan" (then minilm),
#   as docs/conan_model.md says. Whole runs per padding multiple (minilm, the 13 retrieval tasks, ~65 s each on the
#   H200): ONLY=harness SPEED_ARGS="--harness-model minilm --harness-tasks retrieval --harness-pad 1,64 --budget harness=150".
# Without PART, one call runs every part (530 s of budgets, backstop 700 s): more than a device call allows, for a
# machine of one's own.
set -o pipefail
# a dry run's files are a plumbing check, not results: without OUT they go to a temporary folder (before stop 62,
# into benchmarks/results beside the committed ones, untracked)
[ -n "${DRY:-}" ] && [ -z "${OUT:-}" ] && OUT=$(mktemp -d -t gpu-session-dry-XXXXXX)
OUT=$(mkdir -p "${OUT:-benchmarks/results}" && cd "${OUT:-benchmarks/results}" && pwd)
SITE=$PWD/.cache/device/site
WHEEL_DIRS=".cache/device/wheels-call1 .cache/device/wheels-call2"
# DRY=1 installs nothing: the wheels are for the device's Python 3.12 (this machine's packages stand in)
[ -n "${DRY:-}" ] && { echo "[session] DRY=1: the carried wheels are not installed; files go to $OUT"; WHEEL_DIRS=""; }
for wheels in $WHEEL_DIRS; do
  stamp=$SITE/.installed-$(basename "$wheels")  # what a call before this one installed (a warm machine keeps it)
  if ls "$wheels"/*.whl >/dev/null 2>&1 && [ "$(ls "$wheels")" != "$(cat "$stamp" 2>/dev/null)" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
      "$wheels"/*.whl || { echo "installing $wheels failed"; exit 1; }
    ls "$wheels" > "$stamp"
  fi
done
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}${SITE:+:$SITE} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
# the tree arrives without .git: the commit benchmarks/device_bundle.py wrote beside the wheels goes into each JSON's env
HARNESS_CODE_VERSION=$(cat .cache/device/wheels-call*/CODE_VERSION 2>/dev/null | head -n 1)
export HARNESS_CODE_VERSION
DRY_ARGS=${DRY:+--dry-run}
[ -z "${DRY:-}" ] && DATA=${DATA:-$( [ -d .cache/device/shared-data ] && echo .cache/device/shared-data )}
SHAPE=$( [ -d .cache/device/minilm-shape ] && echo .cache/device/minilm-shape )
SPEED_TIMEOUT=${SPEED_TIMEOUT:-$( [ -n "${PART:-}" ] && echo 360 || echo 700 )}  # all parts in one call: 530 s of budgets
case "${PART:-all}" in
  1) PARTS="--only flex --only mfu" ;;
  2) PARTS="--only encode --only harness --only prefetch" ;;
  *) PARTS="" ;;
esac
# ONLY="harness" (parts, space-separated) overrides PART's parts; ONLY=none runs none (only the installs and the
# import check: a first call that readies a machine for the next). SPEED_ARGS passes more gpu_speed.py options,
# e.g. SPEED_ARGS="--budget harness=480 --harness-model conan".
# ONLY may also name "shapes": benchmarks/bench_shapes.py (minilm's first run of each batch shape, and padding to a
# multiple; ~60 s, backstop SHAPES_TIMEOUT 150 s), run after gpu_speed's parts, if any.
SHAPES=""
if [ -n "${ONLY:-}" ]; then
  [[ " $ONLY " == *" shapes "* ]] && SHAPES=1
  PARTS=$(for part in $ONLY; do [ "$part" != none ] && [ "$part" != shapes ] && printf -- '--only %s ' "$part"; done)
fi
status=0
# Drop the stack frames inside torch of dynamo's warnings (a "File .../torch/..." line and its code line), keep
# everything else: a "recompile limit hit, falling back to eager" warning must stay in the log.
frames_out() { awk '/^  File ".*\/torch\//{skip=1; next} skip{skip=0; if (/^    /) next} {print}'; }
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no cuda')"
if [ -z "${DRY:-}" ] && [ -d "$SITE" ]; then  # the carried wheels beside the image's own packages: a failure here names what to carry
  python3 -m pip list 2>/dev/null | grep -iE "^(pyarrow|fsspec|huggingface.hub|transformers|sentence.transformers|pandas) "
  # each call checks what it has installed so far (call 2 adds pydantic, carried with mteb)
  needs="datasets, polars, pytrec_eval"; [ -f "$SITE/.installed-wheels-call2" ] && needs="$needs, pydantic"
  python3 -c "import $needs; print('mteb needs import: datasets', datasets.__version__)" \
    2>&1 | tail -3 | tee "$OUT/device_imports.log" || status=1
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
# flex vs bias: outputs and gradients on the GPU (torch has no FlexAttention backward on CPU, where it skips)
if { [ -z "${ONLY:-}" ] && [ "${PART:-all}" != 2 ]; } || [[ " ${ONLY:-} " == *" flex "* ]]; then
  timeout 120 python3 -m pytest -q -p no:cacheprovider ${DRY:+-m "not slow"} tests/conan_model/test_conan_flex.py 2>&1 \
    | tee "$OUT/gpu_flex_test.log" || status=1
  echo "[session] ${SECONDS} s: flex test done"
fi
# ONLY naming no part (ONLY=none): the installs and the import check were the call's work
[ -n "${ONLY:-}" ] && [ -z "$PARTS" ] && [ -z "$SHAPES" ] && { echo "[session] ${SECONDS} s: ONLY=none, no part run"; exit $status; }
# the log file keeps every line; the console gets it without torch's stack frames
if [ -z "${ONLY:-}" ] || [ -n "$PARTS" ]; then
  timeout "$SPEED_TIMEOUT" python3 benchmarks/gpu_speed.py --out "$OUT" $DRY_ARGS $PARTS ${SPEED_ARGS:-} ${DATA:+--data-dir "$DATA"} \
    ${SHAPE:+--minilm-shape "$SHAPE"} 2>&1 | tee "$OUT/gpu_speed${PART:+_part$PART}.log" | frames_out || status=1
  echo "[session] ${SECONDS} s: gpu_speed done (status so far $status)"
fi
if [ -n "$SHAPES" ]; then
  timeout "${SHAPES_TIMEOUT:-150}" python3 benchmarks/bench_shapes.py --out "$OUT" $DRY_ARGS ${DATA:+--data-dir "$DATA"} \
    ${SHAPE:+--minilm-shape "$SHAPE"} 2>&1 | tee "$OUT/bench_shapes.log" || status=1
  echo "[session] ${SECONDS} s: bench_shapes done (status so far $status)"
fi
# a call brings back at most 8 files: the harness's run directories (4 small files per model) travel as one archive
for runs in "$OUT"/*-harness-runs; do
  [ -d "$runs" ] && tar czf "$runs.tgz" -C "$OUT" "$(basename "$runs")" && rm -rf "$runs"
done
if [ -n "${ALL:-}" ]; then
  cd benchmarks
  timeout 240 python3 gpu_model.py --out "$OUT/gpu_model.json" 2>&1 | tee "$OUT/gpu_model.log" || status=1
  # the encode target is met with torch.compile (the eager run stays below it on H100 and H200)
  timeout 300 python3 gpu_model.py --compile --iters 6 --out "$OUT/gpu_model_compile.json" 2>&1 \
    | tee "$OUT/gpu_model_compile.log" | frames_out || status=1
  timeout 240 python3 gpu_train.py --out "$OUT/gpu_train.json" 2>&1 | tee "$OUT/gpu_train.log" || status=1
fi
exit $status
