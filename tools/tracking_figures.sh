#!/usr/bin/env bash
# Every `depthdet eval` behind the tracking figures (README *Tracking objects through
# time*: the main table, the expansion figures, the v1-detector rows; docs/tracking.md:
# *Alerts as published*, the first-net rows) and the depth card's tracking rows, with today's models and
# tracker: run it after a change to either, then copy the figures from the reports.
# Records the bags it lacks first (the README's synth bag commands). About 40 minutes
# on a 2-core VM; reports in $REPORT (README bags) and $OUT (the rest).
#   usage: tools/tracking_figures.sh   (REPORT=report, OUT=$REPORT/tracking_figures, BAGS=bags,
#                                       DEPTHDET=.venv/bin/depthdet)
set -euo pipefail
cd "$(dirname "$0")/.."
DEPTHDET=${DEPTHDET:-.venv/bin/depthdet}
REPORT=${REPORT:-report}
OUT=${OUT:-$REPORT/tracking_figures}
BAGS=${BAGS:-bags}
mkdir -p "$OUT" "$BAGS"
: "${ROS_DOMAIN_ID:?set ROS_DOMAIN_ID (and ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST)}"

record() {  # bag, seed, frames, extra options
    local bag=$1 seed=$2 frames=$3
    shift 3
    # Bags recorded before 2026-12-01 lack the camera's odometry: the same command records
    # the same frames with it.
    if [[ -d $BAGS/$bag ]] && ! grep -q /camera/odometry "$BAGS/$bag/metadata.yaml"; then
        echo "$BAGS/$bag has no /camera/odometry: recording it again"
        rm -rf "${BAGS:?}/$bag"
    fi
    [[ -d $BAGS/$bag ]] || "$DEPTHDET" synth bag --out "$BAGS/$bag" --frames "$frames" \
        --seed "$seed" --moving --quality fast "$@"
}
run() {  # report folder, eval arguments
    local out=$1
    shift
    echo "== $out $(date +%T)"
    nice "$DEPTHDET" eval "$@" --out "$out" --no-progress > "$out.log" 2>&1 \
        || { echo "FAILED: $out (see $out.log)" >&2; exit 1; }
}

record moving_s3 3 300
record moving_s7 7 300
record table_s6 6 200 --scene tabletop
for seed in 11 13 19 23 29; do record "moving_s$seed" "$seed" 300; done
for seed in 9 21 25 27; do record "table_s$seed" "$seed" 200 --scene tabletop; done
# The models the README compares with: the v1 detector and the first depth net.
git show a16f455:models/detector.onnx > "$OUT/v1_detector.onnx"
git show a16f455:models/depth.onnx > "$OUT/first_depth.onnx"

for bag in moving_s3 moving_s7 table_s6; do
    run "$REPORT/$bag" "$BAGS/$bag"
    run "$REPORT/${bag}_gt" "$BAGS/$bag" --tracker-gt-depth 0.05
    run "$REPORT/${bag}_hold1" "$BAGS/$bag" --tracker alert_hold=1.0 --no-plots
    run "$REPORT/${bag}_gt_hold1" "$BAGS/$bag" --tracker-gt-depth 0.05 --tracker alert_hold=1.0 \
        --no-plots
    run "$OUT/v1_$bag" "$BAGS/$bag" --detector-model "$OUT/v1_detector.onnx" --no-plots
    run "$OUT/v1gt_$bag" "$BAGS/$bag" --detector-model "$OUT/v1_detector.onnx" \
        --tracker-gt-depth 0.05 --no-plots
    run "$OUT/first_$bag" "$BAGS/$bag" --detector-model "$OUT/v1_detector.onnx" \
        --depth-model "$OUT/first_depth.onnx" --depth-strategy robust --no-plots
    run "$OUT/v4_$bag" "$BAGS/$bag" --depth-model models/candidates/depth_v4_continued.onnx \
        --no-plots
done
for bag in moving_s3 moving_s7; do
    run "$REPORT/${bag}_expansion" "$BAGS/$bag" --tracker ttc_source=expansion --no-plots
done
for bag in moving_s11 moving_s13 moving_s19 moving_s23 moving_s29 table_s9 table_s21 \
        table_s25 table_s27; do
    run "$REPORT/$bag" "$BAGS/$bag" --no-plots
    run "$REPORT/${bag}_gt" "$BAGS/$bag" --tracker-gt-depth 0.05 --no-plots
done
# The camera's own motion (docs/tracking.md, *The camera's own motion: time to contact*).
for bag in moving_s3 moving_s7 moving_s11 moving_s13 moving_s19 moving_s23 moving_s29 \
        table_s6 table_s9 table_s21 table_s25 table_s27; do
    run "$OUT/odom_$bag" "$BAGS/$bag" --camera-odometry /camera/odometry --no-plots
    run "$OUT/odomgt_$bag" "$BAGS/$bag" --camera-odometry /camera/odometry \
        --tracker-gt-depth 0.05 --no-plots
done
echo "done $(date +%T)"
