#!/usr/bin/env bash
# One prepared GPU check (run where a GPU is lent): training throughput and MFU of gpt2-124m
# (micro-batch 16, context 1024, bf16, compiled), then the real CLI path on the GPU end to end.
# Usage: bash bench/gpu.sh  (writes logs to $OUT if set)
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/noisecli-gpu}; mkdir -p "$OUT"
nvidia-smi -L; python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__)"
python3 bench/pretrain_gpu.py --iters 30 --warmup 10 2>&1 | grep -v Warning | tee "$OUT/gpu_bench.txt"
python3 bench/pretrain_gpu.py --iters 10 --warmup 3 --no-compile 2>&1 | grep -v Warning | tee -a "$OUT/gpu_bench.txt"
python3 bench/pretrain_gpu.py --iters 20 --warmup 5 --batch-size 32 2>&1 | grep -v Warning | tee -a "$OUT/gpu_bench.txt"
# not yet measured (session 4 had no GPU): autotuned kernels, bounded so the CLI check below still runs
timeout 240 python3 bench/pretrain_gpu.py --iters 30 --warmup 10 --compile-mode max-autotune-no-cudagraphs 2>&1 \
  | grep -v Warning | tee -a "$OUT/gpu_bench.txt"
# the CLI on CUDA: prepare the embedded corpus, train gpt2-124m briefly, resume, evaluate
python3 -m noisecli prepare --out /tmp/wiki --alpha 0.05 --dist random > /dev/null
python3 -m noisecli pretrain --data /tmp/wiki --out /tmp/run --preset gpt2-124m --batch-size 16 --grad-accum 2 \
  --max-iters 20 --stop-after 10 --warmup-iters 5 --eval-every 10 --eval-windows 64 --log-every 5 2>&1 | tail -4
python3 -m noisecli pretrain --data /tmp/wiki --out /tmp/run --preset gpt2-124m --batch-size 16 --grad-accum 2 \
  --max-iters 20 --warmup-iters 5 --eval-every 10 --eval-windows 64 --log-every 5 --resume 2>&1 | tail -3
cp /tmp/run/metrics.jsonl /tmp/run/run.json "$OUT/" 2>/dev/null
tail -2 /tmp/run/metrics.jsonl
# the whole pipeline sized for one GPU (reproduce --budget gpu, not yet measured), bounded; the report and
# its figures land in $OUT/reproduce-gpu (resumable: rerunning continues where the timeout stopped it)
timeout 300 python3 -m noisecli reproduce --budget gpu --out "$OUT/reproduce-gpu" 2>&1 | tail -40
