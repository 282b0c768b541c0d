#!/usr/bin/env bash
# Fine-tune the v1 models (the v1 detector and the first depth net, both bundled until
# 2026-11-30) on the wider-camera v2 world (the "fine-tune" experiments of
# models/detector.md and models/depth.md; not shipped). The v1 models themselves came from
# this script as of commit a16f455 (`git show a16f455:tools/train_defaults.sh`). Nothing it
# trains is better than the bundled models (the detector of tools/train_detector_moving.sh
# and the canonical depth net), so it installs nothing.
#
# CPU only: both nets train at the same time with one torch thread each (one to two hours
# of wall time on 2 cores, depending on what else runs). Everything lands under data/v2 (datasets) and runs/v2
# (checkpoints, metrics.csv/png, logs, ONNX after every epoch, evaluation). Re-running
# resumes interrupted dataset generation and training (--resume when last.pt exists).
# On a GPU machine use tools/train_gpu.sh instead.
#   usage: tools/train_defaults.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DEPTHDET=${DEPTHDET:-.venv/bin/depthdet}
DATA=${DATA:-data/v2}
RUNS=${RUNS:-runs/v2}
DEPTH_EPOCHS=${DEPTH_EPOCHS:-3}
DEPTH_FRAMES=${DEPTH_FRAMES:-800}
DETECTOR_EPOCHS=${DETECTOR_EPOCHS:-4}
THREADS=${THREADS:-1}
# TRAIN=depth or TRAIN=detector trains one net only (the other keeps its bundled model).
TRAIN=${TRAIN:-both}
mkdir -p "$RUNS"
# v2 fine-tunes the v1 models (commit a16f455, reproduced by this script there)
# on the wider-camera world: the CPU hours already spent on them are not repeated.
V1=a16f455
[[ -f "$RUNS/v1_depth.onnx" ]] || git show "$V1:models/depth.onnx" > "$RUNS/v1_depth.onnx"
[[ -f "$RUNS/v1_detector.onnx" ]] || git show "$V1:models/detector.onnx" > "$RUNS/v1_detector.onnx"

# 1. Synthetic data: the v2 splits (tools/v2_data.sh).
DEPTHDET=$DEPTHDET DATA=$DATA tools/v2_data.sh

resume_flag() { [[ -f "$1/last.pt" ]] && echo --resume || true; }

# 2. Depth net: hybrid CNN with a MobileNetV2 encoder and a half-width decoder, 320x256
#    input, targets in a canonical camera of 250 px focal length (the runtime rescales to
#    the real camera), seed 003's BerHu loss (as v1; a switch to the scale-invariant log
#    loss lost delta1 0.35 -> 0.23 in the first fine-tuning epoch), half of the samples
#    in the runtime's padded full-image view, EMA of the weights; from v1.
depth_job=
[[ "$TRAIN" == detector ]] || "$DEPTHDET" train depth --data "$DATA/train" --val-data "$DATA/val" --out "$RUNS/depth" \
    --arch hybrid_mobilenetv2 --arch-kwargs '{"decoder_width": 0.5}' --loss berhu \
    --input-size 256 320 --max-depth 12 --canonical-focal 250 --pad-prob 0.5 \
    --epochs "$DEPTH_EPOCHS" --max-train-frames "$DEPTH_FRAMES" --batch-size 8 --optimizer adamw --lr 2e-4 --weight-decay 1e-4 \
    --warmup-steps 30 --schedule cosine --ema-decay 0.999 --ema-tau 200 --seed 0 \
    --init-from "$RUNS/v1_depth.onnx" \
    --device cpu --threads "$THREADS" --checkpoint-every 25 $(resume_flag "$RUNS/depth") \
    >> "$RUNS/depth.log" 2>&1 &
[[ "$TRAIN" == detector ]] || depth_job=$!

# 3. Detector: YOLOv5n for the sim's 10 classes at 320x320, mosaic, EMA; from v1.
detector_job=
[[ "$TRAIN" == depth ]] || "$DEPTHDET" train detector --data "$DATA/train" --val-data "$DATA/val" \
    --out "$RUNS/detector" --arch yolov5n --image-size 320 --epochs "$DETECTOR_EPOCHS" \
    --batch-size 16 --optimizer adamw --lr 5e-4 --weight-decay 0.01 --warmup-steps 50 \
    --schedule cosine --close-mosaic 1 --ema-decay 0.995 --ema-tau 100 --seed 0 \
    --init-from "$RUNS/v1_detector.onnx" \
    --device cpu --threads "$THREADS" --checkpoint-every 25 $(resume_flag "$RUNS/detector") \
    >> "$RUNS/detector.log" 2>&1 &
[[ "$TRAIN" == depth ]] || detector_job=$!
[[ -z "$depth_job" ]] || wait "$depth_job"
[[ -z "$detector_job" ]] || wait "$detector_job"
DETECTOR_ONNX=$RUNS/detector/detector.onnx
[[ "$TRAIN" != depth ]] || DETECTOR_ONNX=models/detector.onnx
DEPTH_ONNX=$RUNS/depth/depth.onnx
[[ "$TRAIN" != detector ]] || DEPTH_ONNX=models/depth.onnx

# 4. Held-out evaluation through core.pipeline (the model-card numbers).
"$DEPTHDET" train evaluate --data "$DATA/test" --detector "$DETECTOR_ONNX" \
    --depth "$DEPTH_ONNX" --json "$RUNS/evaluation.json" | tee "$RUNS/evaluation.md"

if [[ "${1:-}" == --install ]]; then
    echo "nothing installed: the bundled models are better than these fine-tunes" \
        "(models/detector.md, models/depth.md)"
fi
