"""emomix: emotional text-to-speech with mixed emotions (EmoMix on Grad-TTS)."""

import os as _os

__version__ = "0.1.0"

# oneDNN keeps the primitives and reordered weights of every input shape it has seen, about
# 200 MB per mel length for HiFi-GAN's fast path; an eval or a --batch vocodes a new length
# per utterance and grew to 6 GB. 128 entries hold one length's convolutions, so repeated
# lengths stay cached (docs/performance.md, "Evaluation"). Read when oneDNN first runs, so it is
# set here, before any torch op of emomix; a value the user set wins.
for _name in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY"):
    _os.environ.setdefault(_name, "128")
