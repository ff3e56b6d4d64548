#!/usr/bin/env bash
# Issue 5's INT8 pipeline figures on a CPU with 8-bit dot products (VNNI): the lent GPU machine's Xeon, with
# every benchmarked process pinned to 2 cores (taskset), like the 2-core dev machine. The GPU is not used.
# Carry .whl/ (pydantic's and PyAV's cp312 wheels).
#   bash experiments/cpu_vnni.sh prep   # 500 calibration images, calibrate, INT8 and FP32 plans built on
#                                       # cores 0-1 (tactics timed where the bench runs), `lanner bench` of both
#   bash experiments/cpu_vnni.sh int8   # bench/pipeline.py: the INT8 plan against the FP32 hand loop (ORT)
#   bash experiments/cpu_vnni.sh fp32   # the same bench with the FP32 ONNX (efficiency and hand loop in FP32)
# Each is one device call (the machine stays warm between calls that follow within its idle window).
# Logs and JSON go to $OUT (default runs/out).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/out}
SITE=/tmp/site_vnni
mkdir -p "$OUT" runs
[ -d $SITE/av ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target $SITE .whl/*.whl || exit 1
export PYTHONPATH=$SITE:$PWD/src PYTHONUNBUFFERED=1 CUDA_VISIBLE_DEVICES=
L="python3 -m lanner.cli.main"
ONNX=src/lanner/assets/traffic_detector.onnx
# two logical CPUs on different physical cores (0 and 1 may be hyperthreads of one core)
CPUS=$(lscpu -p=CPU,CORE | grep -v '^#' | sort -t, -k2,2n -u | head -n 2 | cut -d, -f1 | paste -sd,)
PIN="taskset -c $CPUS"
echo "pinned to CPUs $CPUS" | tee "$OUT/pin.txt"
lscpu | grep -E "Model name|^Flags" | sed 's/Flags:.*\(avx512_vnni\).*/Flags: ... \1 .../' | tee "$OUT/cpu.txt"
case "${1:-}" in
  prep)
    [ -d runs/cal ] || $L dataset synth --out runs/cal --images 500 --resolution 800x450 --seed 303 --workers 14 > /dev/null || exit 1
    [ -f runs/cal_out/traffic_detector_int8.onnx ] || $L calibrate $ONNX --images runs/cal -o runs/cal_out 2>&1 | tail -n 4 | tee "$OUT/calibrate.txt"
    $PIN $L build runs/cal_out/traffic_detector_int8.onnx --precision int8 --batch 4 -o runs/det_int8.plan 2>&1 | tee "$OUT/build_int8.txt"
    $PIN $L build $ONNX --batch 4 -o runs/det_fp32.plan 2>&1 | tee "$OUT/build_fp32.txt"
    for p in runs/det_fp32.plan runs/det_int8.plan; do
      echo "== $p" && $PIN timeout 60 $L bench $p --batch 4 --threads 2 --iterations 30
    done 2>&1 | grep -E "^==|Throughput|Latency" | tee "$OUT/engine_detector.txt"
    ;;
  int8)
    $PIN timeout 560 python3 bench/pipeline.py --model runs/det_int8.plan --hand-model $ONNX --repeats 3 \
      --json "$OUT/pipeline_int8.json" 2>&1 | tail -n 30 | tee "$OUT/pipeline_int8.txt"
    ;;
  fp32)
    $PIN timeout 560 python3 bench/pipeline.py --model $ONNX --repeats 3 --interval 2 \
      --json "$OUT/pipeline_fp32.json" 2>&1 | tail -n 30 | tee "$OUT/pipeline_fp32.txt"
    ;;
  *) echo "usage: $0 prep|int8|fp32" >&2; exit 2 ;;
esac
