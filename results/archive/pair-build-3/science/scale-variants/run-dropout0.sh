#!/usr/bin/env bash
# Without dropout (the only random draw that micro-batches and processes make differently for LoRA), one torch
# thread each: do --micro-batch 4 and --nproc 2 then train the plain run's modules up to float order?
set -u
OUT=$(cd "$(dirname "$0")" && pwd); cd "$OUT/../../.."
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 OMP_WAIT_POLICY=PASSIVE TQDM_DISABLE=1 OMP_NUM_THREADS=1
ARGS="--methods finetune_old,finetune_new,direct_transfer --set dropout=0"
run() {
  local name=$1; shift
  rm -rf $OUT/cache-$name
  local start=$(date +%s)
  PEFT_TRANSFER_BENCH_CACHE=$OUT/cache-$name .venv/bin/bench run $ARGS --out $OUT/$name.json "$@" > $OUT/$name.log 2>&1
  echo "$name rc=$? wall=$(( $(date +%s) - start ))s" >> $OUT/summary.txt
}
run d0-plain &
run d0-micro4 --micro-batch 4 &
wait
run d0-nproc2 --nproc 2
