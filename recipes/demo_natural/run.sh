#!/usr/bin/env bash
# The demo-natural recipe (docs/demo_corpus.md): stage 1 renders the natural-voice corpus in ESD's
# layout (pip install 'emomix[natural]') and prepares it; then the stages every recipe shares
# (recipes/stages.sh), with configs sized for a 2-core CPU. Resumable, like every recipe:
#   bash recipes/demo_natural/run.sh --device cpu --workers 2
#   bash recipes/demo_natural/run.sh --stage 4 --stop-stage 4      # go on training
# The same tree through the ESD recipe, unchanged: CORPUS=data/demo_natural/corpus bash recipes/esd/run.sh
corpus=demo-natural
recipe=$(cd "$(dirname "$0")" && pwd)
DATA=${DATA:-data/demo_natural}; RUNS=${RUNS:-runs/demo_natural}
prep_src() { echo "$DATA/corpus"; }
source "$recipe/../stages.sh"
