#!/usr/bin/env bash
# The esd recipe: CORPUS=/path/to/esd bash recipes/esd/run.sh --device cuda  (stages: recipes/stages.sh)
corpus=esd
recipe=$(cd "$(dirname "$0")" && pwd)
prep_src() { echo "${CORPUS:?set CORPUS to the esd root folder}"; }
source "$recipe/../stages.sh"
