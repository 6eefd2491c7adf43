#!/usr/bin/env bash
# The GPU figures in one run, within 8 minutes on one NVIDIA GPU (16 cores), written to $OUT:
#   1. `napari-mia train` for GPU_CHECK_MINUTES (2) minutes with mixed precision on DSB 2018, then `napari-mia
#      evaluate` of that model on images of a kind it never saw (benchmarks/heldout_sets.py);
#   2. benchmarks/scale_up.py: the engine's training and prediction against bare loops;
#   3. the Train Model dock training for GPU_CHECK_DOCK_SECONDS (30) s in a viewer without a screen
#      (benchmarks/gui_stall.py: the device the dock used, the event loop's lateness).
# Without a GPU each part says so and runs a reduced form on the CPU, so the script can be checked anywhere.
#
#   OUT=gpu_out DATA=../shared/data bash benchmarks/gpu_check.sh
#
# Environment: OUT (default ./gpu_out), DATA (the folder holding dsb2018_fluo; default ./shared/data, else
# ../shared/data), PYTHON (default .venv/bin/python when present, else python3), GPU_CHECK_MINUTES,
# GPU_CHECK_DOCK_SECONDS, GPU_CHECK_SCALE_ARGS (arguments for scale_up.py), GPU_CHECK_SETS (held-out sets to
# evaluate on, default "kind x4" on a GPU, "x1" on the CPU), GPU_CHECK_UPSCALED (images in x1/x3/x4),
# GPU_CHECK_TRAIN_IMAGES (train on the first N training images only; default all on a GPU, 12 on the CPU).
# Nothing is installed or downloaded: the package is used from src/ of this checkout; what is missing is said.
set -u -o pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu_out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LOG=$OUT/gpu_check.log
SUMMARY=$OUT/summary.txt
: >"$LOG"
: >"$SUMMARY"
exec > >(tee -a "$LOG") 2>&1

say() { echo "== $*"; }
result() { echo "$*" | tee -a "$SUMMARY" >/dev/null; echo "-> $*"; }
START=$(date +%s)
elapsed() { echo $(($(date +%s) - START)); }

if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x "$ROOT/.venv/bin/python" ]; then PY=$ROOT/.venv/bin/python
else PY=$(command -v python3 || true); fi
if [ -z "$PY" ]; then
    result "environment: no python3 on this machine: nothing can run"
    exit 2
fi
# The package from this checkout; no installation needed when its dependencies are present.
export PYTHONPATH=$ROOT/src${PYTHONPATH:+:$PYTHONPATH}
MIA=("$PY" -m napari_mia.cli)

say "machine: $(nproc) cores, $(uname -sr); python: $PY ($("$PY" -c 'import sys; print(sys.version.split()[0])'))"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/== nvidia-smi: /'
else
    say "nvidia-smi: not found"
fi

# What the engine needs, and what the dock needs besides.
missing=$("$PY" - <<'EOF'
import importlib.util
core = ["torch", "torchvision", "segmentation_models_pytorch", "albumentations", "numpy", "scipy", "skimage",
        "tifffile", "imageio", "yaml", "safetensors", "tqdm"]
print(" ".join(m for m in core if importlib.util.find_spec(m) is None))
EOF
)
if [ -n "$missing" ]; then
    result "environment: $PY lacks $missing: napari-mia cannot run here. This script installs nothing (the device" \
        "machine has no internet): bring an environment with the pinned requirements (requirements/constraints.txt)."
    exit 2
fi
read -r TORCH CUDA GPU_NAME < <("$PY" - <<'EOF'
import torch
ok = torch.cuda.is_available()
print(torch.__version__, torch.version.cuda or "none", (torch.cuda.get_device_name(0) if ok else "none").replace(" ", "_"))
EOF
)
if [ "$GPU_NAME" != "none" ]; then
    GPU=1
    result "device: GPU ${GPU_NAME//_/ } (torch $TORCH, CUDA $CUDA)"
else
    GPU=0
    result "device: NO GPU (torch $TORCH, CUDA build: $CUDA): every part below runs a reduced form on the CPU;" \
        "its figures are not GPU figures"
fi

GIVEN_DATA=${DATA:-}
if [ -z "${DATA:-}" ]; then
    for d in "$ROOT/shared/data" "$ROOT/../shared/data"; do
        if [ -d "$d/dsb2018_fluo/images" ]; then DATA=$d; break; fi
    done
fi
if [ -n "${DATA:-}" ] && [ -d "$DATA/dsb2018_fluo/images" ]; then
    DATA=$(cd "$DATA" && pwd)
    say "data: $DATA/dsb2018_fluo"
    # The benchmarks read DSB from $NAPARI_MIA_SHARED/data.
    SHARED_LINK=$(mktemp -d)
    ln -s "$DATA" "$SHARED_LINK/data"
    export NAPARI_MIA_SHARED=$SHARED_LINK
else
    DATA=""
    result "data: ABSENT (no dsb2018_fluo in ${GIVEN_DATA:-./shared/data or ../shared/data}; set DATA): parts 1 and 2" \
        "need it and are skipped"
fi

# On a GPU a part that hangs is killed (`timeout`: reported as failed) rather than taking the run's 8 minutes; the
# CPU's reduced form has no such limits (a shared CPU can be many times slower).
limited() { if [ "$GPU" = 1 ]; then timeout "$@"; else shift; "$@"; fi; }
if [ "$GPU" = 1 ]; then
    MINUTES=${GPU_CHECK_MINUTES:-2}
    DOCK_SECONDS=${GPU_CHECK_DOCK_SECONDS:-30}
    SCALE_ARGS=${GPU_CHECK_SCALE_ARGS:-}
    SETS=${GPU_CHECK_SETS:-kind x4}
    UPSCALED=${GPU_CHECK_UPSCALED:-24}
    TRAIN_IMAGES=${GPU_CHECK_TRAIN_IMAGES:-}  # all 438
    PRECISION=on
else
    MINUTES=${GPU_CHECK_MINUTES:-0.5}
    DOCK_SECONDS=${GPU_CHECK_DOCK_SECONDS:-15}
    SCALE_ARGS=${GPU_CHECK_SCALE_ARGS:---steps 3 --batch 2 --patch 128 --size 512}
    SETS=${GPU_CHECK_SETS:-x1}
    UPSCALED=${GPU_CHECK_UPSCALED:-4}
    # Reading and validating hundreds of images takes minutes on a CPU before the first step.
    TRAIN_IMAGES=${GPU_CHECK_TRAIN_IMAGES:-12}
    PRECISION=auto  # float32: bfloat16 is slow on CPUs without its instructions
fi

# The training's own budget, plus reading the images, validating and saving.
TRAIN_LIMIT=$("$PY" -c "print(int(float('$MINUTES') * 60 + 180))")

# -- 1. time-budget training, then evaluation on held-out kinds ----------------------------------------------------
if [ -n "$DATA" ]; then
    say "1. train for $MINUTES min (precision $PRECISION), evaluate on held-out sets: $SETS  [t=$(elapsed)s]"
    HELD=$OUT/heldout
    if ! "$PY" benchmarks/heldout_sets.py "$HELD" --upscaled "$UPSCALED" >"$OUT/heldout_sets.txt" 2>&1; then
        result "1. held-out sets: FAILED (see $OUT/heldout_sets.txt)"
    else
        # Trained on every DSB image except the held-out kinds, so that the evaluation is on unseen images.
        TRAIN=$HELD/train
        if [ -n "$TRAIN_IMAGES" ]; then
            TRAIN=$HELD/train_$TRAIN_IMAGES
            mkdir -p "$TRAIN/images" "$TRAIN/masks"
            for f in $(ls "$HELD/train/images" | head -n "$TRAIN_IMAGES"); do
                ln -sf "$(readlink -f "$HELD/train/images/$f")" "$TRAIN/images/$f"
                ln -sf "$(readlink -f "$HELD/train/masks/$f")" "$TRAIN/masks/$f"
            done
        fi
        say "training on $(ls "$TRAIN/images" | wc -l) images of $TRAIN"
        t0=$(date +%s)
        if limited "$TRAIN_LIMIT" "${MIA[@]}" train --images "$TRAIN/images" --masks "$TRAIN/masks" --label-mode instances \
            --minutes "$MINUTES" --precision "$PRECISION" --out "$OUT/gpu2min.pt" --quiet 2>&1 | tee "$OUT/train.txt"; then
            result "1. training: $(( $(date +%s) - t0 )) s wall; $(grep -iE 'validation|steps|stopped|epoch' "$OUT/train.txt" | tail -2 | tr '\n' ' ')"
            for set in $SETS; do
                extra=()
                case $set in x3|x4) extra=(--diameter auto) ;; esac
                t0=$(date +%s)
                if limited 150 "${MIA[@]}" evaluate --model "$OUT/gpu2min.pt" --images "$HELD/$set/images" --masks "$HELD/$set/masks" \
                    --out "$OUT/evaluate_$set.csv" --quiet "${extra[@]}" >"$OUT/evaluate_$set.txt" 2>&1; then
                    result "1. evaluate on $set ${extra[*]}: $(( $(date +%s) - t0 )) s; $(tail -3 "$OUT/evaluate_$set.txt" | tr '\n' ' ')"
                else
                    result "1. evaluate on $set: FAILED: $(tail -2 "$OUT/evaluate_$set.txt" | tr '\n' ' ')"
                fi
            done
        else
            result "1. training: FAILED: $(tail -2 "$OUT/train.txt" | tr '\n' ' ')"
        fi
    fi
fi

# -- 2. engine against bare loops ------------------------------------------------------------------------------------
if [ -n "$DATA" ]; then
    say "2. benchmarks/scale_up.py $SCALE_ARGS  [t=$(elapsed)s]"
    # shellcheck disable=SC2086
    if limited 240 "$PY" benchmarks/scale_up.py $SCALE_ARGS --json >"$OUT/scale_up.json" 2>"$OUT/scale_up.err"; then
        result "2. scale_up: $(tail -1 "$OUT/scale_up.json")"
    else
        result "2. scale_up: FAILED: $(tail -2 "$OUT/scale_up.err" | tr '\n' ' ')"
    fi
fi

# -- 3. the dock, training in a viewer without a screen ----------------------------------------------------------------
say "3. the Train Model dock, $DOCK_SECONDS s of training in a headless viewer  [t=$(elapsed)s]"
if ! "$PY" -c "import napari, qtpy.QtWidgets" >"$OUT/dock.txt" 2>&1; then
    result "3. dock: napari or a Qt binding cannot be imported here: $(tail -1 "$OUT/dock.txt")"
else
    if [ -n "${DISPLAY:-}" ]; then
        how="the display $DISPLAY"; RUNNER=()
    elif command -v xvfb-run >/dev/null; then
        how="xvfb-run"; RUNNER=(xvfb-run -a -s "-screen 0 1400x900x24")
    else
        how="QT_QPA_PLATFORM=offscreen (no X server)"; RUNNER=(env QT_QPA_PLATFORM=offscreen)
    fi
    if timeout "$([ "$GPU" = 1 ] && echo 300 || echo 1500)" "${RUNNER[@]}" "$PY" benchmarks/gui_stall.py --seconds "$DOCK_SECONDS" >"$OUT/dock.txt" 2>&1; then
        result "3. dock ($how): $(grep -E 'trained on|lateness' "$OUT/dock.txt" | tr '\n' ' ')"
    else
        result "3. dock ($how): napari/Qt could not start or training failed: $(tail -3 "$OUT/dock.txt" | tr '\n' ' ')"
    fi
fi

[ -n "${SHARED_LINK:-}" ] && rm -rf "$SHARED_LINK"
# The held-out folders are symlinks into the data and large upscaled copies: not figures.
rm -rf "$OUT/heldout"
# The model (~60 MB) only when asked for: KEEP_MODEL=1.
[ "${KEEP_MODEL:-0}" = 1 ] || rm -f "$OUT/gpu2min.pt"
say "done in $(elapsed) s; figures in $OUT (summary.txt, *.txt, *.csv, scale_up.json)"
cat "$SUMMARY"
