#!/usr/bin/env bash
# Shared stages of every recipe; recipes/<corpus>/run.sh sets `corpus`, `prep_src` and sources this.
#
#   bash recipes/<corpus>/run.sh [--stage N] [--stop-stage M] [--device auto|cpu|cuda] [--workers W]
#
# Stages: 1 prep  2 train the SERs (the conditioning one; then, where the recipe has a
# judge_ser.yaml, the independent judge of stage 6)  3 prototypes  4 train tts  5 export the
# model  6 eval (judged by the recipe's own judge SER)
# Each stage is a CLI command and safe to re-run: prep skips finished utterances, training
# resumes from last.pt. Knobs (environment): DATA, RUNS, MODEL_OUT; config overrides
# SER_OVERRIDES="train.steps=500" (both SERs), TTS_OVERRIDES="train.max_minutes=30"; extra flags
# PREP_OPTIONS="--language en", EVAL_OPTIONS="--max-sentences 2 --guidance-sweep off".
set -euo pipefail
stage=1; stop_stage=6; device=auto; workers=2
data=${DATA:-data/$corpus}; runs=${RUNS:-runs/$corpus}
model_out=${MODEL_OUT:-$runs/model.pt}
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2;;
    --stop-stage) stop_stage=$2; shift 2;;
    --device) device=$2; shift 2;;
    --workers) workers=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
emomix=${EMOMIX:-emomix}
resume_flag() { [ -f "$1/last.pt" ] && echo "--resume $1/last.pt" || true; }
run() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }

if run 1; then
  src=$(prep_src)
  $emomix prep --dataset "$corpus" "$src" --out "$data/features" --workers "$workers" ${PREP_OPTIONS:-}
fi
if run 2; then
  $emomix train ser --config "$recipe/ser.yaml" --device "$device" $(resume_flag "$runs/ser") \
    features="$data/features" run_dir="$runs/ser" ${SER_OVERRIDES:-}
  if [ -f "$recipe/judge_ser.yaml" ]; then
    $emomix train ser --config "$recipe/judge_ser.yaml" --device "$device" $(resume_flag "$runs/judge_ser") \
      features="$data/features" run_dir="$runs/judge_ser" ${SER_OVERRIDES:-}
  fi
fi
if run 3; then
  $emomix prototypes --features "$data/features" --ser "$runs/ser/ser.pt" --out "$runs/prototypes.pt" --per-speaker
fi
if run 4; then
  $emomix train tts --config "$recipe/tts.yaml" --device "$device" $(resume_flag "$runs/tts") \
    features="$data/features" ser="$runs/ser/ser.pt" prototypes="$runs/prototypes.pt" run_dir="$runs/tts" ${TTS_OVERRIDES:-}
fi
if run 5; then
  ${PYTHON:-python} -c "from emomix_cli.tts import export_for_shipping; export_for_shipping('$runs/tts/tts.pt', '$model_out')"
fi
if run 6; then
  judge=(); [ -f "$runs/judge_ser/ser.pt" ] && judge=(--judge-ser "$runs/judge_ser/ser.pt")
  $emomix eval --model "$model_out" --features "$data/features" --out "$runs/eval" \
    ${judge[@]+"${judge[@]}"} ${EVAL_OPTIONS:-}
fi
