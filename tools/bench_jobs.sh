#!/bin/bash
# --jobs 2 against --jobs 1, side by side: the same trainings alternately one after another
# (one thread) and two at once (one thread each), each into a fresh runs folder; prints the
# wall and CPU seconds and the load average around each (docs/performance.md).
#   tools/bench_jobs.sh [MODEL] [EPOCHS] [FOLDS] [CORPUS_SIZE] [REPEATS]
#   tools/bench_jobs.sh xu_alignment 24 0,1,2,3 smoke 2
set -u
model=${1:-xu_alignment}; epochs=${2:-24}; folds=${3:-0,1,2,3}; size=${4:-smoke}; repeats=${5:-2}
py=${PYTHON:-.venv/bin/python}
out=$(mktemp -d -t bench-jobs-XXXX)
arm() {  # name, jobs
  local dir=$out/$1
  local l0 t0 t1 l1 rc
  l0=$(cut -d' ' -f1-3 /proc/loadavg); t0=$(date +%s.%N)
  OMP_NUM_THREADS=1 /usr/bin/time -f "cpu_user=%U cpu_sys=%S" -o "$dir.time" "$py" -m workbench.cli train "$model" \
    --recipe demo --epochs "$epochs" --corpus-size "$size" --folds "$folds" --quiet --runs-root "$dir" --jobs "$2" \
    > "$dir.log" 2>&1
  rc=$?; t1=$(date +%s.%N); l1=$(cut -d' ' -f1-3 /proc/loadavg)
  echo "$1 jobs=$2 rc=$rc wall=$(echo "$t1 - $t0" | bc) $(tail -1 "$dir.time") loadavg_before=[$l0] loadavg_after=[$l1]"
}
for r in $(seq "$repeats"); do  # alternate the order, so a change of load hits both arms
  if [ $((r % 2)) = 1 ]; then arm "r${r}_jobs1" 1; arm "r${r}_jobs2" 2; else arm "r${r}_jobs2" 2; arm "r${r}_jobs1" 1; fi
done
echo "runs and logs in $out"
