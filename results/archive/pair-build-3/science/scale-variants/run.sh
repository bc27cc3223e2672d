#!/usr/bin/env bash
# Issue 11's "done when": the default tiny grid, plain and under each scale flag, each from a fresh cache.
set -u
OUT=$(cd "$(dirname "$0")" && pwd); cd "$OUT/../../.."
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 OMP_WAIT_POLICY=PASSIVE TQDM_DISABLE=1
run() {  # name, cache, flags...
  local name=$1 cache=$2; shift 2
  [ -f $OUT/$name.json ] && return
  local start=$(date +%s)
  PEFT_TRANSFER_BENCH_CACHE=$cache .venv/bin/bench run --out $OUT/$name.json "$@" > $OUT/$name.log 2>&1
  echo "$name rc=$? wall=$(( $(date +%s) - start ))s" >> $OUT/summary.txt
}
fresh() { rm -rf $OUT/cache-$1; echo $OUT/cache-$1; }
# auto resolves to fp32 on this CPU (the probe), so its keys are plain's: every module and evaluation is reused
run precision-auto $OUT/cache-plain --precision auto
run checkpointing $(fresh checkpointing) --gradient-checkpointing
run micro4 $(fresh micro4) --micro-batch 4
run seeds12 $OUT/cache-plain --seeds 1,2
run ray $(fresh ray) --executor ray
run nproc2 $(fresh nproc2) --nproc 2
