#!/usr/bin/env bash
# Continue the canonical depth net (models/candidates/depth_v2_canonical.onnx, 5 epochs
# from scratch by tools/train_pair_budget.sh) for 8 more epochs on the v2 frames: same
# architecture, loss, canonical focal (250 px) and padded view; AdamW at lr 1e-3 (half the
# first run's), 100 warm-up steps, cosine, EMA. One torch thread, niced: about 57 min on
# session 11's 2-core VM. Resumable (re-run it); the ONNX file is written after each epoch.
# Its $OUT/run/depth.onnx is the bundled models/depth.onnx (models/depth.md). To train the
# bundled net on: INIT=models/depth.onnx OUT=runs/NEW, then evaluate and, if better,
# replace models/depth.onnx and regenerate its figures (docs/development_notes.md).
# EXTRA_DATA adds training splits (e.g. data/moving/train, frames of moving sequences made
# by tools/train_detector_moving.sh); LR changes the peak learning rate.
#   usage: tools/train_depth_canonical_continue.sh   (OUT=, EPOCHS=, DATA=, EXTRA_DATA=, LR=)
set -euo pipefail
cd "$(dirname "$0")/.."
DEPTHDET=${DEPTHDET:-.venv/bin/depthdet}
DATA=${DATA:-data/v2}
OUT=${OUT:-runs/depth_v2c_cont}
EPOCHS=${EPOCHS:-8}
INIT=${INIT:-models/candidates/depth_v2_canonical.onnx}
LR=${LR:-1e-3}
read -r -a EXTRA <<< "${EXTRA_DATA:-}"
mkdir -p "$OUT"
DEPTHDET=$DEPTHDET DATA=$DATA tools/v2_data.sh
RESUME=()
[[ -f $OUT/run/last.pt ]] && RESUME=(--resume)
nice -n 19 "$DEPTHDET" train depth --data "$DATA/train" "${EXTRA[@]}" --val-data "$DATA/val" --out "$OUT/run" \
    --arch hybrid_mobilenetv2 --arch-kwargs '{"decoder_width": 0.5}' --loss berhu \
    --input-size 256 320 --max-depth 12 --canonical-focal 250 --pad-prob 0.5 \
    --epochs "$EPOCHS" --batch-size 8 --optimizer adamw --lr "$LR" --weight-decay 0.01 \
    --warmup-steps 100 --schedule cosine --ema-decay 0.995 --ema-tau 100 \
    --max-val-frames 60 --seed 1 --device cpu --threads 1 --checkpoint-every 50 \
    --init-from "$INIT" "${RESUME[@]}" >> "$OUT/train.log" 2>&1 \
    || { rc=$?; echo "training failed; the end of $OUT/train.log:" >&2
         tail -n 5 "$OUT/train.log" >&2; exit "$rc"; }
