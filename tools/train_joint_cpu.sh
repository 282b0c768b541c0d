#!/usr/bin/env bash
# Train the joint network (issue 14) on the CPU: the speed variant (prototype module at half
# width, depth at 1/4, half-width decoder), from scratch, on the v2 synthetic splits of
# tools/train_defaults.sh. About 90 minutes on 2 cores; resumable (re-run it). A GPU run of
# the full recipe is `JOINT_EPOCHS=60 tools/train_gpu.sh`.
# ARCH=joint_mobilenetv2 RUNS=runs/joint_mnv2 trains the MobileNetV2 variant instead.
#   usage: tools/train_joint_cpu.sh [--install]   (--install copies joint.onnx to models/)
set -euo pipefail
cd "$(dirname "$0")/.."
DEPTHDET=${DEPTHDET:-.venv/bin/depthdet}
DATA=${DATA:-data/v2}
RUNS=${RUNS:-runs/joint_cpu}
EPOCHS=${EPOCHS:-5}
THREADS=${THREADS:-2}
ARCH=${ARCH:-joint_yolov5n}
mkdir -p "$RUNS"
DEPTHDET=$DEPTHDET DATA=$DATA tools/v2_data.sh
resume=
[[ -f "$RUNS/joint/last.pt" ]] && resume=--resume
"$DEPTHDET" train joint --data "$DATA/train" --val-data "$DATA/val" --out "$RUNS/joint" \
    --arch "$ARCH" --proto-width 0.5 --depth-stride 4 --decoder-width 0.5 \
    --image-size 320 --epochs "$EPOCHS" --batch-size 8 --optimizer adamw --lr 2e-3 \
    --weight-decay 0.01 --warmup-steps 100 --schedule cosine --ema-decay 0.995 --ema-tau 100 \
    --max-depth 12 --canonical-focal 250 --max-val-frames 60 --seed 0 --device cpu \
    --threads "$THREADS" --checkpoint-every 50 $resume >> "$RUNS/joint.log" 2>&1
# Held-out evaluation through core.pipeline: boxes, masks, depth, per-object depth by
# strategy (the model card's figures).
"$DEPTHDET" train evaluate --data "$DATA/test" --joint-model "$RUNS/joint/joint.onnx" \
    --json "$RUNS/evaluation.json" | tee "$RUNS/evaluation.md"
if [[ "${1:-}" == --install ]]; then
    cp "$RUNS/joint/joint.onnx" models/joint.onnx
fi
