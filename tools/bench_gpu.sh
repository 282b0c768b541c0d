#!/usr/bin/env bash
# The GPU figures of issue 15 in one command, on a machine with an NVIDIA GPU:
#   tools/bench_gpu.sh
# 1. Says which backend it measures (onnxruntime-gpu's CUDA/TensorRT providers, else
#    PyTorch on CUDA, labelled as such) or stops at once with one line and exit code 2.
# 2. Exports YOLOv5s at 640x640 and the full hybrid_resnet50 with random weights (speed
#    does not depend on them) and a dynamic batch dimension, unless already there.
# 3. `depthdet bench --sections gpu` on that pair: per-stage p50/p90 for CUDA FP32 (with
#    and without I/O binding), TensorRT FP16 and the CPU in the same run, GPU memory,
#    ratios, throughput with several cameras batched, and the targets (end to end p50
#    <= 6 ms, >= 250 frames/s batched).
# 4. The same on the bundled pair with the bundled INT8 pair on TensorRT (INT8/FP16
#    ratio; their batch is fixed at 1, so cameras take turns through one session set).
# Results: Markdown on stdout, JSON in $OUT_DIR. Knobs (environment): PYTHON (.venv/bin/python, else python3),
# OUT_DIR (runs/bench_gpu), ITERATIONS (200), WARMUP (20), BATCH_SIZES (4,8),
# SIZE (640x480). Needs numpy, opencv, onnxruntime(-gpu); torch and onnx to export. No ROS.
# test/test_gpu_bench_script.py checks the quick stop on a machine without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
# The repository's .venv when there is one (`make env`); else the machine's python3 (a
# lent GPU machine with torch, where the .venv is not carried).
if [[ -z ${PYTHON:-} && -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; fi
PY=${PYTHON:-python3}
OUT_DIR=${OUT_DIR:-runs/bench_gpu}
ITERATIONS=${ITERATIONS:-200}
WARMUP=${WARMUP:-20}
BATCH_SIZES=${BATCH_SIZES:-4,8}
SIZE=${SIZE:-640x480}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
DEPTHDET=("$PY" -m depthdet_ros.cli)

"$PY" -m depthdet_ros.bench.gpu || exit 2
mkdir -p "$OUT_DIR"
log() { echo "[bench_gpu $(date +%H:%M:%S)] $*" | tee -a "$OUT_DIR/bench_gpu.log" >&2; }

detector=$OUT_DIR/yolov5s_640.onnx
depth=$OUT_DIR/hybrid_resnet50.onnx
[[ -f $detector ]] || { log "exporting $detector"; "${DEPTHDET[@]}" export --random-weights \
    --arch yolov5s --input-size 640 640 --dynamic-batch -o "$detector" >> "$OUT_DIR/export.log"; }
[[ -f $depth ]] || { log "exporting $depth"; "${DEPTHDET[@]}" export --random-weights \
    --arch hybrid_resnet50 --dynamic-batch -o "$depth" >> "$OUT_DIR/export.log"; }

common=(--sections gpu --size "$SIZE" --iterations "$ITERATIONS" --warmup "$WARMUP"
        --gpu-batch-sizes "$BATCH_SIZES" --gpu-cache-dir "$OUT_DIR/trt_cache")
log "yolov5s@640 + hybrid_resnet50 (engine builds on the first run take minutes)"
"${DEPTHDET[@]}" bench "${common[@]}" --detector-model "$detector" --depth-model "$depth" \
    --json "$OUT_DIR/gpu_yolov5s_hybrid_resnet50.json"
log "bundled pair, FP32 against the bundled INT8 pair"
"${DEPTHDET[@]}" bench "${common[@]}" --int8-detector-model models/detector_int8.onnx \
    --int8-depth-model models/depth_int8.onnx --json "$OUT_DIR/gpu_bundled_int8.json"
log "done: $OUT_DIR/gpu_yolov5s_hybrid_resnet50.json, $OUT_DIR/gpu_bundled_int8.json"
