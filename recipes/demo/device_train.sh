#!/usr/bin/env bash
# How the demo model shipped from 2026-11-30 to 2026-12-01 (score2d, tts.yaml) began: 4.5 minutes
# of run.sh's stage 4 on a GPU box that has torch but no audio/text packages (2107 steps), before
# 0.68 CPU-hours more (recipes/demo/RESULTS.md, "The previous model"). The model shipped now was
# trained on a CPU alone: flow1d, step 27003, 5.56 hours, recipes/demo/cpu_train.sh.
# Locally (CPU): run.sh stages 1-3, then
#   python recipes/demo/pack_features.py pack data/demo/features .devcarry/store.npz
#   cp runs/demo/ser/ser.pt runs/demo/prototypes.pt .devcarry/
# and on the GPU box, in a copy of the repo holding .devcarry/:
#   MINUTES=4.5 DEV=cuda OUT=/somewhere bash recipes/demo/device_train.sh
# It trains for MINUTES (resumable: run.sh stage 4 again continues from last.pt) and leaves the
# run folder as 15 MB tar parts in $OUT (cat them, untar, then run.sh stage 5).
set -e; export PYTHONPATH=$PWD PYTHONUNBUFFERED=1; PY=${PY:-python3}
mkdir -p runs/demo/ser
$PY recipes/demo/pack_features.py unpack .devcarry/store.npz data/demo/features
cp .devcarry/ser.pt runs/demo/ser/ser.pt; cp .devcarry/prototypes.pt runs/demo/prototypes.pt
EMOMIX="${EMOMIX:-$PY -m emomix_cli}" TTS_OVERRIDES="train.max_minutes=${MINUTES:-5} train.batch_size=32 train.lr=0.0002 train.val_every=0 train.ckpt_every=1000 train.log_every=100" \
  bash recipes/demo/run.sh --stage 4 --stop-stage 4 --device "${DEV:-cuda}" > /tmp/tts_train.out 2>&1 || { tail -30 /tmp/tts_train.out; exit 1; }
cat runs/demo/tts/train.log
tar czf /tmp/r.tgz --exclude=tb --exclude=best.pt runs/demo/tts
mkdir -p "${OUT:-/tmp/devout}"; split -b 15M /tmp/r.tgz "${OUT:-/tmp/devout}/r.tgz.part"; ls -la "${OUT:-/tmp/devout}"
