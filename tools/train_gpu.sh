#!/usr/bin/env bash
# Train the bundled models on a GPU machine from this repository alone (about 10 minutes
# on one H200 with 16 cores): render the training data with MuJoCo's EGL back-end in
# parallel shards, train the depth net and the detector to convergence on the GPU, export
# and verify both ONNX files (at most 16 MiB each), evaluate them on the held-out split,
# and leave everything with the logs in $OUT_DIR.
#
# Needs python3 with torch (CUDA), numpy, opencv, onnx, onnxruntime, pyyaml, tqdm,
# matplotlib, and mujoco (pip wheel). No ROS. Budget knobs (environment):
#   FRAMES (training frames, default 16000), SHARDS (parallel render processes, 14),
#   DEPTH_EPOCHS (30), DETECTOR_EPOCHS (60), DEVICE (cuda), WORKERS (data loaders, 12),
#   DEPTH_BATCH (64), DETECTOR_BATCH (64), OUT_DIR (runs/gpu), MUJOCO_GL (egl);
#   JOINT_EPOCHS (0: off) and JOINT_BATCH (32) for the joint net of issue 14, trained after
#   the pair on the same shards (docs/joint_model.md); JOINT_VARIANT (default: the speed
#   variant that is >= 1.5x faster than the pair on the CPU; empty: the full-width net);
#   JOINT_ARCH (joint_yolov5n; joint_mobilenetv2 for the MobileNetV2 backbone).
# tests/test_train_gpu_script.py runs it on the CPU with a tiny budget.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT_DIR=${OUT_DIR:-runs/gpu}
DATA=$OUT_DIR/data
FRAMES=${FRAMES:-16000}
VAL_FRAMES=${VAL_FRAMES:-300}
TEST_FRAMES=${TEST_FRAMES:-200}
SHARDS=${SHARDS:-14}
DEPTH_EPOCHS=${DEPTH_EPOCHS:-30}
DETECTOR_EPOCHS=${DETECTOR_EPOCHS:-60}
DEVICE=${DEVICE:-cuda}
WORKERS=${WORKERS:-12}
DEPTH_BATCH=${DEPTH_BATCH:-64}
DETECTOR_BATCH=${DETECTOR_BATCH:-64}
DEPTH_SIZE=${DEPTH_SIZE:-256 320}
DETECTOR_SIZE=${DETECTOR_SIZE:-320}
SIZES=${SIZES:-640x480,640x360,512x512,480x640}
MAX_ONNX_BYTES=$((16 * 1024 * 1024))
export MUJOCO_GL=${MUJOCO_GL:-egl} PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
DEPTHDET=("$PY" -m depthdet_ros.cli)
mkdir -p "$OUT_DIR"
log() { echo "[train_gpu $(date +%H:%M:%S)] $*" | tee -a "$OUT_DIR/train_gpu.log"; }

log "rendering $FRAMES training frames in $SHARDS shards ($MUJOCO_GL)"
per_shard=$(( (FRAMES + SHARDS - 1) / SHARDS ))
pids=()
for shard in $(seq 0 $((SHARDS - 1))); do
    "${DEPTHDET[@]}" synth dataset --out "$DATA" --split "train$shard" --frames "$per_shard" \
        --seed 21 --size "$SIZES" > "$OUT_DIR/render_$shard.log" 2>&1 &
    pids+=($!)
done
"${DEPTHDET[@]}" synth dataset --out "$DATA" --split val --frames "$VAL_FRAMES" --seed 21 \
    --size "$SIZES" > "$OUT_DIR/render_val.log" 2>&1
"${DEPTHDET[@]}" synth dataset --out "$DATA" --split test --frames "$TEST_FRAMES" \
    --seed 900000 --size "$SIZES" > "$OUT_DIR/render_test.log" 2>&1
for pid in "${pids[@]}"; do wait "$pid"; done
shards=()
for shard in $(seq 0 $((SHARDS - 1))); do shards+=("$DATA/train$shard"); done

log "training the depth net ($DEPTH_EPOCHS epochs) and the detector ($DETECTOR_EPOCHS epochs)"
common=(--val-data "$DATA/val" --device "$DEVICE" --workers "$WORKERS" --seed 0
        --optimizer adamw --schedule cosine --checkpoint-every 200)
"${DEPTHDET[@]}" train depth --data "${shards[@]}" --out "$OUT_DIR/depth" "${common[@]}" \
    --arch hybrid_mobilenetv2 --arch-kwargs '{"decoder_width": 0.5}' --loss silog_grad \
    --input-size $DEPTH_SIZE --max-depth 12 --canonical-focal 250 --pad-prob 0.5 \
    --epochs "$DEPTH_EPOCHS" --batch-size "$DEPTH_BATCH" --lr 2e-3 --weight-decay 1e-4 \
    --warmup-steps 300 --ema-decay 0.999 --ema-tau 500 > "$OUT_DIR/depth.log" 2>&1 &
depth_job=$!
"${DEPTHDET[@]}" train detector --data "${shards[@]}" --out "$OUT_DIR/detector" \
    "${common[@]}" --arch yolov5n --image-size "$DETECTOR_SIZE" --epochs "$DETECTOR_EPOCHS" \
    --batch-size "$DETECTOR_BATCH" --lr 2e-3 --weight-decay 0.01 --warmup-steps 300 \
    --close-mosaic 5 --ema-decay 0.9999 --ema-tau 2000 > "$OUT_DIR/detector.log" 2>&1 &
detector_job=$!
status=0
wait "$depth_job" || { status=1; log "depth training failed: see $OUT_DIR/depth.log"; }
wait "$detector_job" || { status=1; log "detector training failed: see $OUT_DIR/detector.log"; }
[[ $status == 0 ]] || exit 1

for onnx in "$OUT_DIR/depth/depth.onnx" "$OUT_DIR/detector/detector.onnx"; do
    bytes=$(stat -c %s "$onnx")
    if (( bytes > MAX_ONNX_BYTES )); then
        log "$onnx is $bytes bytes, over the 16 MiB limit"; exit 1
    fi
done
cp "$OUT_DIR/depth/depth.onnx" "$OUT_DIR/detector/detector.onnx" "$OUT_DIR/"
log "evaluating on the held-out split"
"${DEPTHDET[@]}" train evaluate --data "$DATA/test" --detector "$OUT_DIR/detector.onnx" \
    --depth "$OUT_DIR/depth.onnx" --json "$OUT_DIR/evaluation.json" \
    > "$OUT_DIR/evaluation.md" 2>>"$OUT_DIR/train_gpu.log"

# --- joint net (issue 14), only with JOINT_EPOCHS > 0 -------------------------------------
JOINT_EPOCHS=${JOINT_EPOCHS:-0}
JOINT_BATCH=${JOINT_BATCH:-32}
JOINT_ARCH=${JOINT_ARCH:-joint_yolov5n}
read -r -a joint_variant <<< "${JOINT_VARIANT---proto-width 0.5 --depth-stride 4 --decoder-width 0.5}"
if (( JOINT_EPOCHS > 0 )); then
    log "training the joint net ($JOINT_EPOCHS epochs)"
    "${DEPTHDET[@]}" train joint --data "${shards[@]}" --out "$OUT_DIR/joint" "${common[@]}" \
        --arch "$JOINT_ARCH" "${joint_variant[@]}" --image-size "$DETECTOR_SIZE" \
        --epochs "$JOINT_EPOCHS" \
        --batch-size "$JOINT_BATCH" --lr 2e-3 --weight-decay 0.01 --warmup-steps 300 \
        --max-depth 12 --canonical-focal 250 > "$OUT_DIR/joint.log" 2>&1 \
        || { log "joint training failed: see $OUT_DIR/joint.log"; exit 1; }
    bytes=$(stat -c %s "$OUT_DIR/joint/joint.onnx")
    (( bytes <= MAX_ONNX_BYTES )) || { log "joint.onnx is $bytes bytes, over 16 MiB"; exit 1; }
    cp "$OUT_DIR/joint/joint.onnx" "$OUT_DIR/"
fi
log "done: $OUT_DIR/{depth,detector}.onnx, evaluation.md, depth/ and detector/ metrics"
