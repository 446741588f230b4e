"""emomix: emotional text-to-speech with mixed emotions (EmoMix on Grad-TTS)."""

__version__ = "0.1.0"
