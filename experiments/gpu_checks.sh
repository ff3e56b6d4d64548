#!/usr/bin/env bash
# GPU checks that need no training, on the lent GPU machine. Carry .gpuw/: PyAV's wheel, PyNvVideoCodec
# (nvc.tgz: the package; nvc2.tgz: its pynvvideocodec.libs/ folder with the libcudart it loads), pydantic's
# wheels and cam1080.mp4 (10 s of the synthetic world, 1080p30 H.264).
#   bash experiments/gpu_checks.sh tests    # pytest -m gpu: NVDEC (PyNvVideoCodec and PyAV cuda), NVENC sink
#   bash experiments/gpu_checks.sh bench    # bench/decode.py with --hwaccel cuda, then the nvdec job
#   bash experiments/gpu_checks.sh nvdec    # bench/nvdec.py's FileSource mode: NVDEC against PyAV
# Logs go to $OUT (default runs/out).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/out}
SITE=/tmp/site_gpu
mkdir -p "$OUT"
if [ ! -d $SITE/av ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target $SITE .gpuw/*.whl || exit 1
  tar xzf .gpuw/nvc.tgz -C $SITE && tar xzf .gpuw/nvc2.tgz -C $SITE || exit 1
fi
export PYTHONPATH=$SITE:$PWD/src PYTHONUNBUFFERED=1
case "${1:-}" in
  tests)
    timeout 240 python3 -m pytest -m gpu -q -rs -p no:cacheprovider tests/pipeline 2>&1 | tail -n 25 | tee "$OUT/pytest_gpu.txt"
    ;;
  bench)
    timeout 240 python3 bench/decode.py --size 1920x1080 --streams 8,16,32 --hwaccel cuda 2>&1 | tee "$OUT/decode_cuda.txt"
    bash "$0" nvdec
    ;;
  nvdec)  # the bench/nvdec.py mode that runs lanner's FileSource, NVDEC against PyAV (about 1 minute)
    timeout 200 python3 bench/nvdec.py --clip .gpuw/cam1080.mp4 --modes '' --pipeline-sources 4 2>&1 | tee "$OUT/nvdec_pipeline.txt"
    ;;
  *) echo "usage: $0 tests|bench|nvdec" >&2; exit 2 ;;
esac
