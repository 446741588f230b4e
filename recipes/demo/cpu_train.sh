#!/usr/bin/env bash
# Train a demo model from scratch on a CPU, carried across machines that keep only git
# (recipes/demo/RESULTS.md, "Training from scratch on a CPU"). Resumable; run it again to go on.
#   FAMILY=flow1d MINUTES=60 bash recipes/demo/cpu_train.sh [key=value overrides]
#   FAMILY=score2d MINUTES=60 bash recipes/demo/cpu_train.sh        # the baseline family
# Stages, each skipped when its output exists: render + prep the corpus; the conditioning SER and
# its prototypes (kept in recipes/demo/snapshots/ so every session trains with the same ones);
# then the acoustic model for MINUTES, resumed from the run's last.pt, else from the committed
# snapshot recipes/demo/snapshots/<family>.pt (fp16 weights + EMA, Adam restarts), which is
# written again at the end with the series' wall-clock hours on this machine. A series stops on
# time (MINUTES), never on the YAML's step count (the flow1d series ran into its 20000 once).
set -euo pipefail
family=${FAMILY:-flow1d}; minutes=${MINUTES:-60}
emomix=${EMOMIX:-emomix}; py=${PYTHON:-python}
data=${DATA:-data/demo}; runs=${RUNS:-runs/demo}; keep=recipes/demo/snapshots
# the series differ only in the decoder: score2d takes tts_flow.yaml's other settings, except
# its decoder segment of 64 frames, the score2d CPU recipe (2.5x cheaper a step than 172 at the
# same batch; docs/performance.md), so the baseline gets its best CPU-hour. flow1d ran its
# encoder-emotion dropout at 0.2 until 4.14 h and 0.5 since: past 4.14 h, run score2d with
# model.enc_cond_dropout=0.5 as an extra argument to keep the two series alike
case "$family" in
  flow1d) config=recipes/demo/tts_flow.yaml; same=() ;;
  score2d) config=recipes/demo/tts.yaml
    same=(model.cond_dropout=0.15 model.enc_cond_dropout=0.2 normalise_mels=true train.lr=0.0002
          out_size=64) ;;
  *) echo "FAMILY must be flow1d or score2d, got '$family'" >&2; exit 2 ;;
esac
run_dir=$runs/cpu_$family; snapshot=$keep/$family.pt
mkdir -p "$keep"
[ -f "$data/features/manifest.jsonl" ] || \
  $emomix prep --dataset demo "$data/corpus" --out "$data/features" --workers 2
if [ ! -f "$keep/ser.pt" ]; then
  $emomix train ser --config recipes/demo/ser.yaml --device cpu features="$data/features" run_dir="$runs/ser"
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
