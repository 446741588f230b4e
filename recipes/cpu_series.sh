#!/usr/bin/env bash
# A training series from scratch on a CPU, carried across machines that keep only git
# (recipes/demo/RESULTS.md, "Training from scratch on a CPU"); recipes/<corpus>/cpu_train.sh sets
#   dataset (emomix prep --dataset), recipe (its folder), data, runs, keep (the snapshot folder),
#   series (the run's name), config (its tts YAML) and same (extra overrides, an array)
# and sources this. Stages, each skipped when its output exists: render + prep the corpus; the
# conditioning SER and its prototypes (kept in $keep so every session trains with the same ones);
# then the acoustic model for MINUTES, resumed from the run's last.pt, else from the committed
# snapshot $keep/$series.pt (fp16 weights + EMA, Adam restarts), which is written again at the
# end with the series' wall-clock hours on this machine. A series stops on time (MINUTES), never
# on the YAML's step count. Extra key=value arguments go to `emomix train tts`.
set -euo pipefail
minutes=${MINUTES:-60}
emomix=${EMOMIX:-emomix}; py=${PYTHON:-python}
run_dir=$runs/cpu_$series; snapshot=$keep/$series.pt
mkdir -p "$keep"
[ -f "$data/features/manifest.jsonl" ] || \
  $emomix prep --dataset "$dataset" "$data/corpus" --out "$data/features" --workers 2
if [ ! -f "$keep/ser.pt" ]; then
  $emomix train ser --config "$recipe/ser.yaml" --device cpu features="$data/features" run_dir="$runs/ser"
  cp "$runs/ser/ser.pt" "$keep/ser.pt"
fi
[ -f "$keep/prototypes.pt" ] || \
  $emomix prototypes --features "$data/features" --ser "$keep/ser.pt" --out "$keep/prototypes.pt" --per-speaker
start=()
if [ -f "$run_dir/last.pt" ]; then start=(--resume "$run_dir/last.pt")
elif [ -f "$snapshot" ]; then start=(--resume "$snapshot"); fi
begin=$(date +%s)
$emomix train tts --config "$config" --device cpu "${start[@]}" features="$data/features" \
  ser="$keep/ser.pt" prototypes="$keep/prototypes.pt" run_dir="$run_dir" \
  train.max_minutes="$minutes" train.steps=1000000 train.ckpt_every=100 train.val_every=0 train.log_every=25 \
  ${same[@]+"${same[@]}"} "$@"
$py - "$run_dir/last.pt" "$snapshot" "$begin" <<'PY'
import sys, time
from pathlib import Path
from emomix_cli.checkpoint import load_checkpoint
from emomix_cli.train_loop import write_snapshot
last, snapshot, begin = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
before = load_checkpoint(snapshot, "train-state").get("snapshot", {}).get("hours", 0.0) if snapshot.is_file() else 0.0
hours = before + (time.time() - begin) / 3600
write_snapshot(last, snapshot, hours=round(hours, 3))
print(f"snapshot {snapshot}: step {load_checkpoint(last, 'train-state')['step']}, {hours:.2f} h on this machine")
PY
