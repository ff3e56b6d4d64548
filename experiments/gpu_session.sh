#!/usr/bin/env bash
# The GPU runs behind docs/benchmarks.md's training numbers, on a lent 2-GPU H200 machine (Python 3.12,
# torch with CUDA; no pydantic/albumentations/PyAV/pycocotools, so they travel as cp312 wheels in .whl/).
#   bash experiments/gpu_session.sh a    # GPU0: synth yolox_s; GPU1: day->night scene adaptation
#   bash experiments/gpu_session.sh b    # GPU0: synth yolox_s on 8000 images + train speed;
#                                         # GPU1: class extension + starter detector
# One GPU (nvidia-h200 kind), one job per call:
#   bash experiments/gpu_session.sh synth1   # synth yolox_s on 8000 images (SYNTH_ARGS adds e.g. --epochs 50)
#   bash experiments/gpu_session.sh base     # class extension, step 1: the 3-class base (CLASSEXT_ARGS adds e.g.
#                                             # "--base-images 2000 --base-epochs 60"), brought back in 15 MB
#                                             # parts ($OUT/classext_base.safetensors.part-*: files over 16 MiB
#                                             # do not come back); `cat` them into carry/classext_base.safetensors
#   bash experiments/gpu_session.sh ext      # step 2: carry that file (CLASSEXT_ARGS adds recipe flags)
# A run longer than one call (the machine stays warm while the next call comes within its idle window):
#   bash experiments/gpu_session.sh synth-bg     # start synth yolox_s in its own process session, follow it
#   bash experiments/gpu_session.sh starter-bg   # the shipped starter detector (about 15 min), then `follow`
#   bash experiments/gpu_session.sh classext-bg  # the same for class extension, base and extension in one job
#   bash experiments/gpu_session.sh follow       # a later call: follow it to the end, bring back its result
#   RECIPES="--copy-paste 0.5;--mosaic 1.0" bash experiments/gpu_session.sh classext-multi
#                              # one 3-class base, then one extension per ';'-separated recipe, all at once on
#                              # the one GPU (runs/cx<i>, sharing runs/classext/data); a base left on a warm
#                              # machine by an earlier call is reused. Every recipe's data is rendered first,
#                              # one recipe at a time, so recipes may share a --replay count.
# Each job runs under `timeout` and copies its log and result.json to $OUT (default: runs/out).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/out}
LIMIT=${LIMIT:-540}
mkdir -p "$OUT" runs
if [ -d .whl ]; then
  # a warm machine has them already (and a background run may be using them)
  [ -d /tmp/site/pydantic ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD/src
else
  export PYTHONPATH=$PWD/src
fi
export PYTHONUNBUFFERED=1
L="python3 -m lanner.cli.main"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/rc.txt"

job() {  # job NAME GPU COMMAND...: run on one GPU with a time limit, log to $OUT/NAME.log
  local name=$1 gpu=$2; shift 2
  (CUDA_VISIBLE_DEVICES=$gpu timeout "$LIMIT" bash -c "$*" > "$OUT/$name.log" 2>&1; echo "$name rc=$?" >> "$OUT/rc.txt") &
}

starter() {  # the starter detector in the foreground (sessions a-c); starter-bg below runs it in the background
  starter800 && cp runs/starter_gpu/traffic_detector.onnx "$OUT/"
}

starter800() {  # the shipped detector's recipe (configs/train/starter_detector_gpu.yaml)
  $L dataset synth --out data/starter/train800 --images ${STARTER_IMAGES:-10000} --resolution 800x450 --seed 101 --workers 14 --force &&
    $L dataset synth --out data/starter/val800 --images 300 --resolution 800x450 --seed 202 --workers 14 --force &&
    $L train -e configs/train/starter_detector_gpu.yaml -r runs/starter_gpu ${STARTER_SET:-} &&
    $L export -m runs/starter_gpu/best.safetensors -o runs/starter_gpu/traffic_detector.onnx --dynamic-batch
}

start_bg() {  # start_bg NAME RESULT COMMAND: run COMMAND in its own process session (outlives this call)
  echo "$1 $2" > runs/bg.job
  rm -f runs/bg.rc
  setsid nohup bash -c "$3 > runs/bg.log 2>&1; echo \$? > runs/bg.rc" > /dev/null 2>&1 < /dev/null &
  disown  # the final `wait` must not wait for it (that held every starting call to the device's limit)
}

multi() {  # the classext-multi job (see the header)
  local base=runs/classext/base_3class.safetensors i=0 r
  [ -f $base ] || python3 experiments/class_extension.py --out runs/classext --workers 14 --base-only ${BASE_ARGS:-} || return 1
  find runs -name 'epoch_*.safetensors' -delete  # room on the disk for the runs below
  IFS=';' read -ra recipes <<< "$RECIPES"
  for r in "${recipes[@]}"; do  # each recipe's data (its --replay count) rendered once, before any starts
    python3 experiments/class_extension.py --out runs/classext --workers 14 --data-only $r || return 1
  done
  for r in "${recipes[@]}"; do
    mkdir -p runs/cx$i && ln -sfn ../classext/data runs/cx$i/data && rm -rf runs/cx$i/result.json runs/cx$i/extended
    echo "cx$i: $r"
    OMP_NUM_THREADS=2 python3 experiments/class_extension.py --out runs/cx$i --workers ${RECIPE_WORKERS:-3} \
      --base-checkpoint $base $r > runs/cx$i.log 2>&1 &
    i=$((i + 1))
  done
  wait
  python3 -c "import glob, json; print(json.dumps({f: json.load(open(f)) for f in sorted(glob.glob('runs/cx*/result.json'))}))" \
    > runs/classext_multi.json
  for f in runs/cx*/result.json; do grep -E '"(new_class_AP50|old_classes_drop_points|passed)"' "$f" | tr -d '\n'; echo " $f"; done
}

follow_bg() {  # follow_bg SECONDS: print the background job's epochs until it ends or SECONDS pass
  local end=$((SECONDS + $1)) name result
  read -r name result < runs/bg.job
  while [ ! -f runs/bg.rc ] && [ $SECONDS -lt $end ]; do sleep 10; done
  grep -E "mAP|epoch" runs/bg.log | tail -n 8
  for f in runs/cx*.log; do [ -f "$f" ] && echo "$f: $(grep -E 'epoch' "$f" | tail -n 1)"; done
  [ -n "$(ls runs/cx*.log 2> /dev/null)" ] && tail -q -n 3 runs/cx*.log > "$OUT/recipes_tail.txt"
  cp runs/bg.log "$OUT/$name.log"
  if [ -f runs/bg.rc ]; then
    echo "$name rc=$(cat runs/bg.rc)" >> "$OUT/rc.txt"
    cp "$result" "$OUT/$name.${result##*.}" 2>/dev/null  # starter.onnx, synth.json, ...
  else
    echo "$name still running after this call" >> "$OUT/rc.txt"
  fi
}

case "${1:-}" in
  a)
    job synth 0 "python3 experiments/synth_yolox_s.py --out runs/synth_yolox_s --workers 16 ${SYNTH_ARGS:-} && cp runs/synth_yolox_s/result.json $OUT/synth.json"
    job scene 1 "python3 experiments/scene_adaptation.py --out runs/scene --workers 10 && cp runs/scene/result.json $OUT/scene.json"
    ;;
  c)  # the runs session b's time limit cut or left short
    job classext 0 "python3 experiments/class_extension.py --out runs/classext --workers 12 && cp runs/classext/result.json $OUT/classext.json"
    job starter 1 "$(declare -f starter starter800); L='$L'; OUT='$OUT'; starter"
    ;;
  b)
    job synth 0 "python3 experiments/synth_yolox_s.py --out runs/synth_yolox_s --workers 14 ${SYNTH_ARGS:-} && cp runs/synth_yolox_s/result.json $OUT/synth.json && python3 bench/train_speed.py --workers 12 --out runs/train_speed/train_speed.json && cp runs/train_speed/train_speed.json $OUT/"
    job classext 1 "python3 experiments/class_extension.py --out runs/classext --workers 12 && cp runs/classext/result.json $OUT/classext.json; $(declare -f starter starter800); L='$L'; OUT='$OUT'; starter"
    ;;
  synth1)
    job synth 0 "python3 experiments/synth_yolox_s.py --out runs/synth_yolox_s --workers 14 --train-images 8000 ${SYNTH_ARGS:-} && cp runs/synth_yolox_s/result.json $OUT/synth.json"
    ;;
  base)
    job classext 0 "python3 experiments/class_extension.py --out runs/classext --workers 14 --base-only ${CLASSEXT_ARGS:-} && cp runs/classext/result.json $OUT/classext_base.json && split -b 15M runs/classext/base_3class.safetensors $OUT/classext_base.safetensors.part-"
    ;;
  ext)
    job classext 0 "python3 experiments/class_extension.py --out runs/classext --workers 14 --base-checkpoint carry/classext_base.safetensors ${CLASSEXT_ARGS:-} && cp runs/classext/result.json $OUT/classext.json"
    ;;
  synth-bg)
    start_bg synth runs/synth_yolox_s/result.json \
      "python3 experiments/synth_yolox_s.py --out runs/synth_yolox_s --workers 14 --train-images 8000 ${SYNTH_ARGS:-}"
    follow_bg "$LIMIT"
    ;;
  classext-bg)  # base and extension in one job (CLASSEXT_ARGS e.g. "--freeze-blocks 2 --extend-epochs 100")
    start_bg classext runs/classext/result.json \
      "python3 experiments/class_extension.py --out runs/classext --workers 14 ${CLASSEXT_ARGS:-}"
    follow_bg "$LIMIT"
    ;;
  classext-multi)
    start_bg classext runs/classext_multi.json "$(declare -f multi); RECIPES='${RECIPES:?set RECIPES}'; multi"
    follow_bg "$LIMIT"
    ;;
  starter-bg)  # STARTER_SET="--set training.epochs=40" shortens it
    start_bg starter runs/starter_gpu/traffic_detector.onnx "$(declare -f starter800); L='$L'; starter800"
    follow_bg "$LIMIT"
    ;;
  follow)
    follow_bg "$LIMIT"
    ;;
  *) echo "usage: $0 a|b|c|synth1|base|ext|synth-bg|starter-bg|classext-bg|classext-multi|follow" >&2; exit 2 ;;
esac
wait
cat "$OUT/rc.txt"
# every run's metrics.jsonl in one archive ($OUT brings back at most 8 files)
find runs -name metrics.jsonl -print0 | tar czf "$OUT/metrics.tgz" --null -T -
for f in $(find runs -name metrics.jsonl); do echo "$f: $(grep mAP50 "$f" | tail -n 1 | cut -c1-240)"; done
