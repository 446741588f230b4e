#!/usr/bin/env bash
# The iemocap recipe: CORPUS=/path/to/iemocap bash recipes/iemocap/run.sh --device cuda  (stages: recipes/stages.sh)
corpus=iemocap
recipe=$(cd "$(dirname "$0")" && pwd)
prep_src() { echo "${CORPUS:?set CORPUS to the iemocap root folder}"; }
source "$recipe/../stages.sh"
