#!/usr/bin/env bash
# The demo recipe: render the synthetic corpus (stage 1), train the SERs, make prototypes, train
# the acoustic model with tts.yaml (the score2d decoder), export it to runs/demo/model.pt and
# evaluate it (stages: recipes/stages.sh).
#   bash recipes/demo/run.sh --device cuda       # or --stage 4 --stop-stage 4 to resume training
# The shipped demo model is not this recipe's: it is the flow1d series of cpu_train.sh
# (tts_flow.yaml, step 27003 after 5.56 hours on 2 CPU cores; recipes/demo/RESULTS.md). Export
# over it only on purpose: MODEL_OUT=emomix_cli/assets/demo_model.pt.
corpus=demo
recipe=$(cd "$(dirname "$0")" && pwd)
prep_src() { echo "${DATA:-data/demo}/corpus"; }
source "$recipe/../stages.sh"
