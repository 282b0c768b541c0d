#!/usr/bin/env bash
# The v2 synthetic splits (MuJoCo; room and tabletop scenes; 4:3, 16:9, 1:1 and portrait
# frames; horizontal fields of view 40-110 degrees) in $DATA, shared by
# tools/train_defaults.sh, train_joint_cpu.sh, train_pair_budget.sh and
# train_depth_canonical_continue.sh (the last two trained the bundled depth net). The
# held-out test split uses seed 900000, which no training or validation split uses.
# Re-running resumes rendering.
#   usage: DEPTHDET=... DATA=... tools/v2_data.sh
set -euo pipefail
SIZES=640x480,640x360,512x512,480x640
"$DEPTHDET" synth dataset --out "$DATA" --split val --frames 150 --seed 11 --size "$SIZES"
"$DEPTHDET" synth dataset --out "$DATA" --split train --frames 3000 --seed 11 --size "$SIZES"
"$DEPTHDET" synth dataset --out "$DATA" --split test --frames 200 --seed 900000 --size "$SIZES"
