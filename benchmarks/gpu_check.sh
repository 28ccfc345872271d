#!/usr/bin/env bash
# The GPU check, ready for a freshly lent NVIDIA machine (H100 or H200; Python >= 3.12 with the
# image's JAX; package registries only). From the repository root:
#
#   OUT=/some/folder bash benchmarks/gpu_check.sh     # about 8 minutes in all
#   bash benchmarks/gpu_check.sh --dry-run           # toy sizes on any machine, no install (tests)
#
# 1. Installs dljax (pip install -e .) into python3's environment if that is a venv (the CUDA
#    image's), else into .venv-gpu, a venv that sees the system's packages. If JAX already sees
#    the GPU the `cuda` extra is not needed and is skipped (it would download the CUDA 12 wheels,
#    GBs); otherwise it installs '.[cuda]'.
# 2. Runs `python -m benchmarks.gpu` with what is left of the budget: device and versions, the
#    throughput table at GPU sizes, the GPT-2 small bfloat16 step with MFU, and shakespeare_gpt
#    (nanoGPT's GPU settings) to its val loss. Reports: $OUT/gpu_report.{json,md}, log
#    $OUT/gpu_check.log. BUDGET_S (default 480) is the whole run's time limit.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu_out}
BUDGET_S=${BUDGET_S:-480}
DRY_RUN=0
EXTRA=()  # --runs_dir=DIR: keep the parts' outputs (the tests read the training run)
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    --runs_dir=*) EXTRA+=("$arg") ;;
    *) echo "error: unknown argument '$arg';" \
         "usage: [OUT=DIR] [BUDGET_S=480] bash $0 [--dry-run] [--runs_dir=DIR]" >&2
       exit 2 ;;
  esac
done
mkdir -p "$OUT" \
  || { echo "error: cannot create OUT=$OUT; set OUT to a writable folder" >&2; exit 2; }
START=$(date +%s)
log() { echo "[gpu_check +$(( $(date +%s) - START ))s] $*"; }
exec > >(tee -a "$OUT/gpu_check.log") 2>&1

if [ "$DRY_RUN" = 1 ]; then
  PY=${PYTHON:-python3}
  log "dry run with $PY: no install, toy sizes"
else
  command -v python3 >/dev/null \
    || { echo "error: python3 not found; this check needs Python >= 3.11" >&2; exit 2; }
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "error: $(python3 --version) is too old; dljax needs Python >= 3.11" >&2; exit 2; }
  if python3 -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then
    # python3 is itself a virtual environment (the CUDA image's, with its JAX and PyTorch): a
    # venv made from it would not see those packages, so dljax goes into it directly.
    PY=$(python3 -c 'import sys; print(sys.executable)')
    log "installing into the image's Python environment ($PY)"
  else
    [ -x .venv-gpu/bin/python ] || python3 -m venv --system-site-packages .venv-gpu
    PY=.venv-gpu/bin/python
    log "installing into .venv-gpu (it sees the system's site packages)"
  fi
  if "$PY" -c 'import jax, sys; sys.exit(jax.default_backend() != "gpu")' 2>/dev/null; then
    log "JAX $("$PY" -c 'import jax; print(jax.__version__)') already sees the GPU:" \
      "the cuda extra is not needed"
    TARGET=.
  else
    log "JAX does not see a GPU yet: installing dljax with the cuda extra"
    TARGET=.[cuda]
  fi
  # Without build isolation pip builds with the installed setuptools instead of fetching it.
  if ! { timeout 240 "$PY" -m pip install -q --no-build-isolation -e "$TARGET" \
         || timeout 240 "$PY" -m pip install -q -e "$TARGET"; } >"$OUT/pip.log" 2>&1; then
    tail -5 "$OUT/pip.log"
    echo "error: pip could not install '$TARGET' (log: $OUT/pip.log); it needs a package" \
      "registry, or wheels: PIP_NO_INDEX=1 PIP_FIND_LINKS=DIR" >&2
    exit 2
  fi
  "$PY" -c 'import jax, sys; sys.exit(jax.default_backend() != "gpu")' \
    || { echo "error: JAX still sees no GPU after the install:" \
           "$("$PY" -c 'import jax; print(jax.devices())' 2>&1 | tail -1)" >&2; exit 2; }
fi

LEFT=$(( BUDGET_S - ($(date +%s) - START) ))
[ "$LEFT" -gt 30 ] \
  || { echo "error: the install left only ${LEFT} s of BUDGET_S=${BUDGET_S}" >&2; exit 2; }
log "running benchmarks.gpu with ${LEFT} s left"
ARGS=(--out "$OUT" --budget_s "$LEFT" ${EXTRA[@]+"${EXTRA[@]}"})
[ "$DRY_RUN" = 1 ] && ARGS+=(--dry_run)
"$PY" -m benchmarks.gpu "${ARGS[@]}"
log "done: $OUT/gpu_report.md"
