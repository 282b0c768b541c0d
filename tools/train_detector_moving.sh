#!/usr/bin/env bash
# Fine-tune the v1 detector (commit a16f455's models/detector.onnx) on the v2 frames plus frames of
# moving sequences (`synth dataset --moving`): people walking, one toward the camera down to
# 0.9 m, often cut by the image border, which the independent frames seldom show and the
# tracking bags need (near walkers went undetected: docs/development_notes.md, session 12).
# The moving frames come from seeds no evaluation bag uses (bags: seeds 3, 6, 7).
# Same recipe as tools/train_defaults.sh's detector fine-tune (yolov5n at 320, AdamW 5e-4,
# cosine, EMA, mosaic off for the last epoch), one torch thread, niced. Resumable: re-run it.
# Writes $OUT/run/detector.onnx after every epoch and $OUT/evaluation_{v2,moving}.md, the
# held-out figures of the result against the v1 detector's. Its result is the bundled
# models/detector.onnx since 2026-11-30 (models/detector.md; 3 epochs, 13 min of one core on
# session 13's VM); --install copies it there (then regenerate the figures of the bundled
# pair: docs/development_notes.md). INIT=other.onnx starts from another detector.
#   usage: tools/train_detector_moving.sh [--install]   (OUT=, EPOCHS=, MOVING_FRAMES= to change)
set -euo pipefail
cd "$(dirname "$0")/.."
DEPTHDET=${DEPTHDET:-.venv/bin/depthdet}
DATA=${DATA:-data/v2}
MOVING=${MOVING:-data/moving}
OUT=${OUT:-runs/detector_moving}
EPOCHS=${EPOCHS:-3}
MOVING_FRAMES=${MOVING_FRAMES:-1500}
INIT=${INIT:-}
SIZES=640x480,640x360,512x512,480x640
mkdir -p "$OUT"
DEPTHDET=$DEPTHDET DATA=$DATA tools/v2_data.sh
"$DEPTHDET" synth dataset --out "$MOVING" --split train --frames "$MOVING_FRAMES" --seed 12 \
    --moving --size "$SIZES"
"$DEPTHDET" synth dataset --out "$MOVING" --split test --frames 200 --seed 900000 \
    --moving --size "$SIZES"
# What the run starts from, kept beside it so that a resumed run starts from the same
# (INIT is read only when $OUT/init.onnx does not exist yet).
if [[ ! -f "$OUT/init.onnx" ]]; then
    if [[ -n "$INIT" ]]; then cp "$INIT" "$OUT/init.onnx.tmp"
    else git show a16f455:models/detector.onnx > "$OUT/init.onnx.tmp"; fi
    mv "$OUT/init.onnx.tmp" "$OUT/init.onnx"
fi
RESUME=()
[[ -f $OUT/run/last.pt ]] && RESUME=(--resume)
nice -n 19 "$DEPTHDET" train detector --data "$DATA/train" "$MOVING/train" --val-data "$DATA/val" \
    --out "$OUT/run" --arch yolov5n --image-size 320 --epochs "$EPOCHS" \
    --batch-size 16 --optimizer adamw --lr 5e-4 --weight-decay 0.01 --warmup-steps 50 \
    --schedule cosine --close-mosaic 1 --ema-decay 0.995 --ema-tau 100 --seed 0 \
    --init-from "$OUT/init.onnx" --device cpu --threads 1 --checkpoint-every 25 \
    "${RESUME[@]}" >> "$OUT/train.log" 2>&1 \
    || { rc=$?; echo "training failed; the end of $OUT/train.log:" >&2
         tail -n 5 "$OUT/train.log" >&2; exit "$rc"; }
for split in "$DATA/test:v2" "$MOVING/test:moving"; do
    for model in "$OUT/init.onnx:before" "$OUT/run/detector.onnx:after"; do
        echo "## ${split##*:} held out, ${model##*:} ($(basename "${model%%:*}"))"
        nice -n 19 "$DEPTHDET" train evaluate --data "${split%%:*}" --detector "${model%%:*}"
    done > "$OUT/evaluation_${split##*:}.md"
done
[[ "${1:-}" != --install ]] || cp "$OUT/run/detector.onnx" models/detector.onnx
