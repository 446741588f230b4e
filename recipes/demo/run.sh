#!/usr/bin/env bash
# The demo recipe: render the synthetic corpus (stage 1), train the SER, make prototypes, train
# the acoustic model, export the shipped model and evaluate it (stages: recipes/stages.sh).
#   bash recipes/demo/run.sh --device cuda       # or --stage 4 --stop-stage 4 to resume training
corpus=demo
recipe=$(cd "$(dirname "$0")" && pwd)
prep_src() { echo "${DATA:-data/demo}/corpus"; }
MODEL_OUT=${MODEL_OUT:-emomix_cli/assets/demo_model.pt}
source "$recipe/../stages.sh"
