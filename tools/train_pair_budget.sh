#!/usr/bin/env bash
# Issue 14's equal-budget comparison: train the two-model pair from scratch with the budget
# of the bundled joint model (tools/train_joint_cpu.sh): the same v2 training frames, epochs
# (5), batch size (8), optimizer, learning rate, warm-up, cosine schedule and EMA. Each net
# keeps its own recipe otherwise (mosaic for the detector; BerHu loss, 256x320 input and the
# padded full-image view for the depth net). The pair sees as many samples as the joint
# net but spends more compute on them (two backbones), so the comparison favours the pair.
# Both nets train at once with one torch thread each (about two hours on 2 cores);
# resumable (re-run it). Then all three are evaluated on the held-out split.
#   usage: tools/train_pair_budget.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DEPTHDET=${DEPTHDET:-.venv/bin/depthdet}
DATA=${DATA:-data/v2}
RUNS=${RUNS:-runs/pair_budget}
EPOCHS=${EPOCHS:-5}
JOINT=${JOINT:-models/joint.onnx}
mkdir -p "$RUNS"
DEPTHDET=$DEPTHDET DATA=$DATA tools/v2_data.sh
resume_flag() { [[ -f "$1/last.pt" ]] && echo --resume || true; }
# The joint run's schedule, shared by both nets.
SCHEDULE=(--epochs "$EPOCHS" --batch-size 8 --optimizer adamw --lr 2e-3 --weight-decay 0.01
          --warmup-steps 100 --schedule cosine --ema-decay 0.995 --ema-tau 100
          --max-val-frames 60 --seed 0 --device cpu --threads 1 --checkpoint-every 50)

"$DEPTHDET" train depth --data "$DATA/train" --val-data "$DATA/val" --out "$RUNS/depth" \
    --arch hybrid_mobilenetv2 --arch-kwargs '{"decoder_width": 0.5}' --loss berhu \
    --input-size 256 320 --max-depth 12 --canonical-focal 250 --pad-prob 0.5 \
    "${SCHEDULE[@]}" $(resume_flag "$RUNS/depth") >> "$RUNS/depth.log" 2>&1 &
depth_job=$!
"$DEPTHDET" train detector --data "$DATA/train" --val-data "$DATA/val" --out "$RUNS/detector" \
    --arch yolov5n --image-size 320 --close-mosaic 1 \
    "${SCHEDULE[@]}" $(resume_flag "$RUNS/detector") >> "$RUNS/detector.log" 2>&1 &
detector_job=$!
wait "$depth_job"
wait "$detector_job"

# Side by side on the held-out split, through core.pipeline.
"$DEPTHDET" train evaluate --data "$DATA/test" --detector "$RUNS/detector/detector.onnx" \
    --depth "$RUNS/depth/depth.onnx" --json "$RUNS/pair_evaluation.json" \
    | tee "$RUNS/pair_evaluation.md"
"$DEPTHDET" train evaluate --data "$DATA/test" --joint-model "$JOINT" \
    --json "$RUNS/joint_evaluation.json" | tee "$RUNS/joint_evaluation.md"
