"""Issue 28's "done when", re-runnable on any model: do inline tags move the emotion where they say?

For each speaker (default: the model's first two) and each unseen sentence pair (A, B), the
script speaks "[sad] A [angry] B" and "[angry] A [sad] B" (``emomix mix`` with
``--segments-json``), cuts each wav by its JSON and compares the same words spoken both ways:
the angry version should be louder (RMS dB of the active frames) and higher (pYIN F0 median),
and the sad one slower (seconds per word, silence at the ends trimmed). One comparison is one
segment of one pair for one speaker (2 speakers x 2 pairs x 2 segments = 8); it goes "the right
way" when all three features do, and the table also counts each feature alone. It then checks
that every JSON tiles its wav (last end within 0.15 s of the length), Whisper tiny.en's WER of
the whole wavs (<= 0.25 asked), and that the bad tag ``[angy]`` is refused in one line with
nothing written.

    .venv/bin/python benchmarks/check_tag_contrast.py                       # the default model
    .venv/bin/python benchmarks/check_tag_contrast.py --model runs/x/tts.pt --pairs 4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import soundfile as sf
import torch

from emomix_cli.assets import DEMO_MODEL
from emomix_cli.evaluate.judges import Cost, WhisperASR, prosody, transcribe, wer_cer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cold_start import cpu_description  # noqa: E402 (the CPU line every benchmark prints)

# written for this check; none is a sentence of the demo corpora (asserted in main)
UNSEEN_PAIRS = [
    ("The parcel was left outside the wrong door.", "Nobody told me the meeting had been moved."),
    ("She spilled the paint all over the new carpet.", "We waited three hours for the last bus."),
    ("My phone fell into the lake this afternoon.", "The neighbours are playing loud music again."),
    ("He sold his old guitar to a stranger.", "The bakery ran out of bread before noon."),
]
ORDERS = (("sad", "angry"), ("angry", "sad"))


def speak(model: str, speaker: str, text: str, out: Path, threads: int) -> tuple[Path, list[dict]]:
    """``emomix mix TEXT --speaker S --segments-json`` in a subprocess: (wav, its segments)."""
    segments = out.with_suffix(".json")
    command = [sys.executable, "-m", "emomix_cli", "mix", text, "--model", model, "--speaker",
               speaker, "--segments-json", str(segments), "-o", str(out)]
    subprocess.run(command, check=True, capture_output=True, text=True,
                   env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    return out, json.loads(segments.read_text())["segments"]


def features(path: Path, segment: dict) -> dict:
    """pYIN loudness and F0 median of the segment's cut, and its seconds per word."""
    wav, rate = sf.read(path, dtype="float32")
    cut = wav[int(round(segment["start"] * rate)) : int(round(segment["end"] * rate))]
    words = len(segment["text"].split())
    measured = prosody(cut, rate, words)  # rate: words per second of trimmed speech
    return {"loud": measured["loudness_db"], "f0": measured["f0_median"],
            "s_per_word": 1.0 / measured["rate"] if measured["rate"] else None}


def refuses_bad_tag(model: str, folder: Path) -> tuple[bool, str]:
    out = folder / "bad.wav"
    done = subprocess.run([sys.executable, "-m", "emomix_cli", "mix", "[angy] Hello there.",
                           "--model", model, "-o", str(out)], capture_output=True, text=True)
    said = (done.stdout + done.stderr).strip()
    ok = done.returncode != 0 and "[angy]" in said and len(said.splitlines()) == 1 and not out.exists()
    return ok, said


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEMO_MODEL))
    parser.add_argument("--speakers", nargs="+", help="default: the model's first two")
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    from emomix_cli.demo_corpus import SENTENCES

    assert not {s for pair in UNSEEN_PAIRS for s in pair} & set(SENTENCES), "a pair is not unseen"
    torch.set_num_threads(args.threads)
    if not args.speakers:
        from emomix_cli.tts import load_tts

        args.speakers = load_tts(args.model).speakers[:2]
    comparisons, tiles, wavs, references = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for speaker in args.speakers:
            for k, (a, b) in enumerate(UNSEEN_PAIRS[: args.pairs]):
                spoken = {}
                for first, second in ORDERS:
                    path = folder / f"{speaker}_{k}_{first}.wav"
                    spoken[first] = speak(args.model, speaker, f"[{first}] {a} [{second}] {b}", path,
                                          args.threads)
                    wav, rate = sf.read(path)
                    tiles.append(abs(spoken[first][1][-1]["end"] - len(wav) / rate))
                    wavs.append(wav.astype("float32"))
                    references.append(f"{a} {b}")
                for index, words in enumerate((a, b)):
                    # the orders (named by their first emotion) where these words are angry / sad
                    angry_order, sad_order = ("angry", "sad") if index == 0 else ("sad", "angry")
                    angry = features(spoken[angry_order][0], spoken[angry_order][1][index])
                    sad = features(spoken[sad_order][0], spoken[sad_order][1][index])
                    comparisons.append((speaker, words, angry, sad))
        refused, said = refuses_bad_tag(args.model, folder)
    asr = WhisperASR(threads=args.threads)
    wer = wer_cer(references, transcribe(asr, wavs, rate, Cost()))["wer"]
    report(args, comparisons, tiles, wer, refused, said)
    return 0


def report(args, comparisons, tiles, wer, refused, said) -> None:
    print(f"# check_tag_contrast, {date.today()}: {args.model}, speakers {', '.join(args.speakers)}, "
          f"{args.pairs} unseen pairs")
    print("| speaker | words | loud dB angry / sad | F0 Hz angry / sad | s per word angry / sad | right way |")
    print("|---|---|---|---|---|---|")
    counts = {"loud": 0, "f0": 0, "slow": 0, "all": 0}
    for speaker, words, angry, sad in comparisons:
        right = {"loud": _gt(angry["loud"], sad["loud"]), "f0": _gt(angry["f0"], sad["f0"]),
                 "slow": _gt(sad["s_per_word"], angry["s_per_word"])}
        right["all"] = all(right.values())
        counts = {key: counts[key] + right[key] for key in counts}
        print(f"| {speaker} | {words} | {_pair(angry, sad, 'loud', '.1f')} | {_pair(angry, sad, 'f0', '.0f')} | "
              f"{_pair(angry, sad, 's_per_word', '.3f')} | {'yes' if right['all'] else 'no'} |")
    n = len(comparisons)
    print(f"right way, all three: {counts['all']}/{n} (asked >= 7 of 8); louder {counts['loud']}/{n}, "
          f"higher {counts['f0']}/{n}, sad slower {counts['slow']}/{n}")
    print(f"segments tile the wav: last end within {max(tiles):.4f} s of the length (asked <= 0.15)")
    print(f"Whisper tiny.en WER of the whole wavs: {wer:.3f} (asked <= 0.25)")
    print(f"bad tag refused in one line, nothing written: {'yes' if refused else 'NO'}: {said}")
    print(f"CPU: {cpu_description()}, torch threads {args.threads}")


def _gt(a, b) -> bool:
    return a is not None and b is not None and a > b


def _pair(angry: dict, sad: dict, key: str, spec: str) -> str:
    return " / ".join("-" if side[key] is None else format(side[key], spec) for side in (angry, sad))


if __name__ == "__main__":
    raise SystemExit(main())
