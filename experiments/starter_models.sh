#!/usr/bin/env bash
# Rebuild the two models shipped in src/lanner/assets/ (see its MODEL_CARD.md). The detector recipe
# (configs/train/starter_detector_gpu.yaml) takes about 22 min on one H200; on a CPU use
# configs/train/starter_detector.yaml instead (about 40 min for 6 epochs on the 640x360 data its header
# renders, a much weaker model). The classifier takes about 5 min on the 2-core dev machine.
set -euo pipefail
cd "$(dirname "$0")/.."
L=${LANNER:-lanner}
D=data/starter
$L dataset synth --out $D/train800 --images 10000 --resolution 800x450 --seed 101 --workers 2 --force
$L dataset synth --out $D/val800 --images 300 --resolution 800x450 --seed 202 --workers 2 --force
$L dataset synth --out $D/val720 --images 300 --resolution 1280x720 --seed 202 --workers 2 --force
$L train -e configs/train/starter_detector_gpu.yaml -r runs/starter_detector
$L export -m runs/starter_detector/best.safetensors -o src/lanner/assets/traffic_detector.onnx --dynamic-batch
$L evaluate -m src/lanner/assets/traffic_detector.onnx -d $D/val720 -o runs/starter_detector/eval

$L dataset synth --crops body_type --per-class 300 --out $D/crops --seed 7 --force
$L dataset split $D/crops --out $D/crops_split --val 0.2
$L train -e configs/train/vehicle_type.yaml -r runs/vehicle_type
$L export -m runs/vehicle_type/best.safetensors -o runs/vehicle_type/vehicle_type.onnx --dynamic-batch
$L calibrate runs/vehicle_type/vehicle_type.onnx --images $D/crops_split/train --method entropy --count 500 \
    -o runs/vehicle_type/int8
cp runs/vehicle_type/int8/vehicle_type_int8.onnx src/lanner/assets/vehicle_type.onnx
$L evaluate -m src/lanner/assets/vehicle_type.onnx -d $D/crops_split/val -o runs/vehicle_type/eval_int8
