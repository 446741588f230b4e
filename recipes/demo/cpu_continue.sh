#!/usr/bin/env bash
# Continue training the shipped demo model on CPU (docs/DESIGN.md §9: 64-frame decoder segments,
# cheaper per step than 172: docs/performance.md), with condition dropout for guidance. Resumable: run it again
# and it continues from runs/demo/tts_cpu/last.pt. Then export and judge it (recipes/demo/RESULTS.md,
# "Learning curve").
#   MINUTES=150 bash recipes/demo/cpu_continue.sh [more key=value overrides, e.g. style_weight=0.001]
set -euo pipefail
emomix=${EMOMIX:-emomix}; py=${PYTHON:-python}
run_dir=${RUN_DIR:-runs/demo/tts_cpu}; init=${INIT:-emomix_cli/assets/demo_model.pt}
[ -f data/demo/features/manifest.jsonl ] || $emomix prep --dataset demo data/demo/corpus --out data/demo/features
mkdir -p runs/demo/ser
[ -f runs/demo/ser/ser.pt ] || $py -c "from emomix_cli.tts import unpack_conditioning as u; u('$init', 'runs/demo/ser/ser.pt', 'runs/demo/prototypes.pt')"
start=(--init-from "$init"); [ -f "$run_dir/last.pt" ] && start=(--resume "$run_dir/last.pt")
$emomix train tts --config recipes/demo/tts.yaml --device cpu "${start[@]}" \
  out_size=64 model.cond_dropout=0.15 train.lr=${LR:-0.0001} train.max_minutes="${MINUTES:-150}" \
  train.ckpt_every=200 train.val_every=0 train.log_every=50 run_dir="$run_dir" "$@"
