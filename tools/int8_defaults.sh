#!/usr/bin/env bash
# INT8 versions of the bundled models for the CPU, with their accuracy cost and speed-up:
# the figures of docs/int8.md, in one command.
#
# 1. a calibration split (seed 900001) and the held-out test split (seed 900000) of the
#    synthetic world; 2. `depthdet quantize` on both models (the study JSON lands beside
#    each INT8 model, with the recipe comparison); 3. both pairs through the pipeline on the
#    held-out split, and the cost against the bounds; 4. one `depthdet bench` run with FP32
#    and INT8 interleaved. Everything lands in $OUT (default out/int8).
#   usage: tools/int8_defaults.sh [--install]   (--install copies the INT8 models to models/
#          when the accuracy bounds hold)
set -euo pipefail
cd "$(dirname "$0")/.."
DEPTHDET=${DEPTHDET:-.venv/bin/depthdet}
DATA=${DATA:-data/q}
OUT=${OUT:-out/int8}
DETECTOR=${DETECTOR:-models/detector.onnx}
DEPTH=${DEPTH:-models/depth.onnx}
FRAMES=${FRAMES:-100}
mkdir -p "$OUT"

"$DEPTHDET" synth dataset --out "$DATA" --split calib --frames "$FRAMES" --seed 900001
"$DEPTHDET" synth dataset --out "$DATA" --split test --frames "$FRAMES" --seed 900000

# 7-bit weights whatever this CPU: the INT8 files are shipped to robots whose CPUs may lack
# VNNI, where 8-bit weights saturate onnxruntime's u8s8 kernels (docs/int8.md).
"$DEPTHDET" quantize "$DETECTOR" "$DEPTH" --calibration "$DATA/calib" --frames 64 \
    --check-frames 16 --compare-recipes --reduce-range on --out-dir "$OUT" \
    | tee "$OUT/quantize.log"
DET_INT8=$OUT/$(basename "${DETECTOR%.onnx}")_int8.onnx
DEPTH_INT8=$OUT/$(basename "${DEPTH%.onnx}")_int8.onnx

"$DEPTHDET" train evaluate --data "$DATA/test" --detector "$DETECTOR" --depth "$DEPTH" \
    --json "$OUT/eval_fp32.json" | tee "$OUT/eval_fp32.md"
"$DEPTHDET" train evaluate --data "$DATA/test" --detector "$DET_INT8" --depth "$DEPTH_INT8" \
    --json "$OUT/eval_int8.json" | tee "$OUT/eval_int8.md"
within=0
"$DEPTHDET" quantize --accuracy-cost "$OUT/eval_fp32.json" "$OUT/eval_int8.json" \
    | tee "$OUT/accuracy_cost.md" || within=$?

"$DEPTHDET" bench --detector-model "$DETECTOR" --depth-model "$DEPTH" \
    --int8-detector-model "$DET_INT8" --int8-depth-model "$DEPTH_INT8" \
    --sections pipeline,int8 --no-baseline --no-ros --iterations 100 \
    --json "$OUT/bench_int8.json" | tee "$OUT/bench_int8.md"

if [[ "${1:-}" == --install ]]; then
    if [[ $within -eq 0 ]]; then
        cp "$DET_INT8" "$DEPTH_INT8" models/
    else
        echo "INT8 models not installed: an accuracy bound is exceeded ($OUT/accuracy_cost.md)"
    fi
fi
