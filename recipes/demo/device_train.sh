set -e; export PYTHONPATH=$PWD PYTHONUNBUFFERED=1; PY=${PY:-python3}
mkdir -p runs/demo/ser
$PY recipes/demo/pack_features.py unpack .devcarry/store.npz data/demo/features
cp .devcarry/ser.pt runs/demo/ser/ser.pt; cp .devcarry/prototypes.pt runs/demo/prototypes.pt
EMOMIX="${EMOMIX:-python3 -m emomix_cli}" TTS_OVERRIDES="train.max_minutes=${MINUTES:-5} train.batch_size=32 train.lr=0.0002 train.val_every=0 train.ckpt_every=1000 train.log_every=100" bash recipes/demo/run.sh --stage 4 --stop-stage 4 --device ${DEV:-cuda} > /tmp/tts_train.out 2>&1 || { tail -30 /tmp/tts_train.out; exit 1; }
cat runs/demo/tts/train.log
tar czf /tmp/r.tgz --exclude=tb --exclude=best.pt runs/demo/tts
mkdir -p ${OUT:-/tmp/devout}; split -b 15M /tmp/r.tgz ${OUT:-/tmp/devout}/r.tgz.part; ls -la ${OUT:-/tmp/devout}
