"""The natural-voice demo corpus (``--dataset demo-natural``): its ESD layout and numbering, the
prosody functions against their formulas, a real render read back by the ESD reader, and (slow)
the real-audio gate and the ESD recipe end to end on a render."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emomix_cli import natural_corpus as nc
from emomix_cli.corpora import read_corpus
from emomix_cli.errors import EmomixError

ROOT = Path(__file__).resolve().parents[1]


def test_default_corpus_has_at_least_300_distinct_sentences():
    texts = nc.sentences()
    assert len(set(texts)) == len(texts) >= 300
    assert not any(ch.isdigit() for text in texts for ch in text)


def test_esd_split_sizes_scale_esd_20_and_30_of_350():
    assert nc.esd_split_sizes(350) == (20, 30)
    assert nc.esd_split_sizes(300) == (17, 26)
    assert nc.esd_split_sizes(5) == (1, 1)
    assert [nc.esd_split(i, 5) for i in range(5)] == ["val", "test", "train", "train", "train"]


def test_plan_numbers_utterances_as_esd_does():
    plan = nc.plan_natural_corpus(n_speakers=2, n_sentences=3)
    assert len(plan) == 2 * 5 * 3
    first = [u for u in plan if u.speaker.id == "0011"]
    assert [u.id for u in first] == [f"0011_{k:06d}" for k in range(1, 16)]  # Neutral 1-3, Angry 4-6, ...
    assert [u.emotion for u in first[::3]] == ["neutral", "angry", "happy", "sad", "surprise"]
    assert first[4].path == "0011/Angry/test/0011_000005.wav"
    assert {u.text for u in plan if u.sentence == 1} == {nc.sentences()[1]}  # parallel
    lines = nc.transcript(plan, "0012").splitlines()
    assert lines[3] == f"0012_000004\t{nc.sentences()[0]}\tAngry"


def test_plan_jitter_is_seeded_per_utterance():
    small = nc.plan_natural_corpus(n_speakers=1, n_sentences=2, seed=3)
    large = nc.plan_natural_corpus(n_speakers=2, n_sentences=5, seed=3)
    by_key = {(u.speaker.id, u.emotion, u.sentence): u for u in large}
    for u in small:
        other = by_key[(u.speaker.id, u.emotion, u.sentence)]
        assert (u.f0_jitter, u.rate_jitter, u.loudness_jitter_db) == (
            other.f0_jitter, other.rate_jitter, other.loudness_jitter_db)
    assert nc.plan_natural_corpus(1, 2, seed=4)[0].f0_jitter != small[0].f0_jitter


def test_plan_refuses_sizes_it_cannot_render():
    with pytest.raises(EmomixError, match="--demo-speakers must be 1..6"):
        nc.plan_natural_corpus(n_speakers=7)
    with pytest.raises(EmomixError, match="--demo-sentences must be"):
        nc.plan_natural_corpus(n_sentences=10_000)


def test_contour_is_piecewise_linear():
    contour = ((0.0, 1.0), (0.5, 2.0), (1.0, 1.0))
    assert np.allclose(nc.contour_factor(np.array([0.0, 0.25, 0.5, 0.75, 1.0, 1.5]), contour),
                       [1.0, 1.5, 2.0, 1.5, 1.0, 1.0])


def test_target_pitch_follows_its_formula():
    speaker = nc.NaturalSpeaker("x", formant_ratio=1.25, f0_hz=200.0, rate=1.0)
    flat = nc.NaturalStyle(1.1, 2.0, ((0.0, 1.0), (1.0, 1.0)), 1.0, -20.0, 0.0, ".")
    times, f0 = np.array([0.1, 0.5, 0.9]), np.array([100.0, 200.0, 400.0])
    new = nc.target_pitch(times, f0, 1.0, 200.0, speaker, flat, jitter=1.0)
    level = 200.0 * 1.1 / 1.25  # after resampling by 1.25 the median lands on 200 * 1.1
    assert np.allclose(new, [level / 4, level, level * 4])  # range exponent 2: an octave becomes two
    rising = nc.NaturalStyle(1.0, 1.0, ((0.0, 1.0), (1.0, 1.5)), 1.0, -20.0, 0.0, "?")
    assert np.allclose(nc.target_pitch(np.array([1.0]), np.array([200.0]), 1.0, 200.0, speaker, rising, 1.0),
                       200.0 / 1.25 * 1.5)


def test_finish_sets_loudness_and_limits_peaks():
    t = np.arange(22050) / 22050
    tone = 0.1 * np.sin(2 * np.pi * 220 * t)
    quiet = nc.NaturalStyle(1.0, 1.0, ((0.0, 1.0),), 1.0, -30.0, 0.0, ".")
    out = nc.finish(tone, quiet, loudness_jitter_db=1.0)
    assert out.dtype == np.float32
    assert 20 * np.log10(np.sqrt(np.mean(out.astype(np.float64) ** 2))) == pytest.approx(-29.0, abs=0.05)
    loud = nc.NaturalStyle(1.0, 1.0, ((0.0, 1.0),), 1.0, 0.0, 0.0, ".")
    assert np.abs(nc.finish(tone, loud, 0.0)).max() == pytest.approx(nc.PEAK, abs=1e-4)


def test_drive_raises_loudness_at_the_same_peak():
    t = np.arange(22050) / 22050
    voice = 0.3 * np.sin(2 * np.pi * 150 * t) * (0.2 + np.abs(np.sin(2 * np.pi * 2 * t)))
    clean = nc.NaturalStyle(1.0, 1.0, ((0.0, 1.0),), 1.0, 0.0, 0.0, ".")
    driven = nc.NaturalStyle(1.0, 1.0, ((0.0, 1.0),), 1.0, 0.0, 0.0, ".", drive=2.5)

    def rms(x):
        return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))

    a, b = nc.finish(voice, clean, 0.0), nc.finish(voice, driven, 0.0)
    assert np.abs(a).max() == pytest.approx(np.abs(b).max(), abs=1e-3) == pytest.approx(nc.PEAK, abs=1e-3)
    assert rms(b) > 1.3 * rms(a)  # a denser voice, ~3 dB louder at the same peak


def test_styles_keep_the_documented_order():
    s = nc.STYLES
    assert s["sad"].length_scale > s["angry"].length_scale and s["sad"].f0_factor < s["angry"].f0_factor
    assert s["angry"].loudness_db > s["sad"].loudness_db
    assert min(s["happy"].f0_factor, s["surprise"].f0_factor) > s["neutral"].f0_factor
    f0 = [sp.f0_hz for sp in nc.SPEAKERS[:4]]
    assert max(f0) >= 165 and min(f0) <= 130


def test_missing_extra_is_one_line_naming_the_pip_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "piper" else real(name, *a))
    with pytest.raises(EmomixError, match=r"needs piper-tts: run pip install 'emomix\[natural\]'"):
        nc.render_natural_corpus("/nonexistent/never-written")
    assert not Path("/nonexistent/never-written").exists()


# ---------------------------------------------------------------- real renders (the extra)
@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("natural") / "corpus"
    return nc.render_natural_corpus(root, n_speakers=2, n_sentences=5, progress=False)


def test_render_is_esd_layout_that_the_esd_reader_reads_whole(rendered):
    plan = nc.plan_natural_corpus(n_speakers=2, n_sentences=5)
    records = read_corpus("esd", rendered).records
    assert sorted(r.id for r in records) == sorted(u.id for u in plan)
    for record in records:
        planned = next(u for u in plan if u.id == record.id)
        assert (record.speaker, record.emotion, record.split, record.text, record.language) == (
            planned.speaker.id, planned.emotion, planned.split, planned.text, "en")
        info = sf.info(record.wav)
        assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
    assert (rendered / "0011" / "0011.txt").read_text().startswith("0011_000001\t")
    readme = (rendered / "README.md").read_text()
    assert "CC0" in readme and "GPL-3.0" in readme


def test_render_has_the_prosodic_order_on_every_speaker(rendered):
    from emomix_cli.evaluate.judges import prosody

    for speaker in ("0011", "0012"):
        found = {}
        for emotion, folder in nc.FOLDERS.items():
            wav, rate = sf.read(next((rendered / speaker / folder).rglob("*.wav")), dtype="float32")
            found[emotion] = prosody(wav, rate, n_phones=30)
        assert found["sad"]["rate"] < found["angry"]["rate"], speaker
        assert found["sad"]["f0_median"] < found["angry"]["f0_median"], speaker
        assert found["angry"]["loudness_db"] > found["sad"]["loudness_db"] + 6, speaker
        assert min(found["happy"]["f0_median"], found["surprise"]["f0_median"]) > found["neutral"]["f0_median"], speaker


def test_render_resumes_and_is_deterministic(rendered):
    wav = rendered / "0012" / "Sad" / "evaluation" / "0012_000016.wav"
    before = wav.read_bytes()
    kept = rendered / "0011" / "Happy" / "train" / "0011_000015.wav"
    stamp = kept.stat().st_mtime_ns
    wav.unlink()
    nc.render_natural_corpus(rendered, n_speakers=2, n_sentences=5, progress=False)
    assert wav.read_bytes() == before  # the same file again, byte for byte
    assert kept.stat().st_mtime_ns == stamp  # finished files are not rewritten
    with pytest.raises(EmomixError, match="--demo-sentences 5 and --seed 0; render into a new folder"):
        nc.render_natural_corpus(rendered, n_speakers=2, n_sentences=6, progress=False)


def test_prep_demo_natural_renders_then_reads_it_as_esd(tmp_path, rendered):
    from typer.testing import CliRunner

    from emomix_cli.cli import app

    corpus = tmp_path / "corpus"
    corpus.symlink_to(rendered, target_is_directory=True)
    result = CliRunner().invoke(app, ["prep", "--dataset", "demo-natural", str(corpus), "--out",
                                      str(tmp_path / "features"), "--demo-speakers", "2",
                                      "--demo-sentences", "5"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "features" / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 5 * 5 and {r["speaker"] for r in rows} == {"0011", "0012"}
    config = (tmp_path / "features" / "config.yaml").read_text()
    assert "dataset: demo-natural" in config


# ---------------------------------------------------------------- slow: gate and recipe
@pytest.mark.slow
def test_real_audio_gate_on_a_small_render(tmp_path):
    """Whisper WER, DNSMOS, HiFi-GAN voicing, speaker F0 and the prosodic order on 4 speakers x
    5 emotions x 2 sentences (benchmarks/natural_gate.py; the SER line is checked on the full
    render, docs/demo_corpus.md)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import natural_gate

    root = nc.render_natural_corpus(tmp_path / "corpus", n_speakers=4, n_sentences=2, progress=False)
    cells = natural_gate.judge_corpus(root)
    failed = [(line, figures) for line, passed, figures in natural_gate.gate_lines(cells, {}) if not passed]
    assert not failed


@pytest.mark.slow
def test_esd_recipe_runs_unchanged_on_a_tiny_render(tmp_path):
    """recipes/esd/run.sh from prep to eval on 2 speakers x 5 sentences, a few dozen steps."""
    corpus = nc.render_natural_corpus(tmp_path / "corpus", n_speakers=2, n_sentences=5, progress=False)
    venv = Path(sys.executable).parent
    env = dict(os.environ, CORPUS=str(corpus), DATA=str(tmp_path / "data"), RUNS=str(tmp_path / "runs"),
               EMOMIX=str(venv / "emomix"), PYTHON=sys.executable,
               SER_OVERRIDES="train.steps=30 train.val_every=10 train.ckpt_every=10 crop_frames=100 "
                             "model.conv1_channels=8 model.conv_channels=16 model.n_conv=4 "
                             "model.linear_dim=64 model.lstm_hidden=16 model.embed_dim=16",
               TTS_OVERRIDES="train.steps=30 preset=small model.decoder=flow1d model.flow.channels=[64,64] "
                             "train.batch_size=4 out_size=64 train.val_every=0 train.ckpt_every=10 "
                             "train.num_workers=0 train.precision=fp32",
               EVAL_OPTIONS="--max-sentences 1 --guidance-sweep off --no-dnsmos --threads 2")
    run = subprocess.run(["bash", str(ROOT / "recipes/esd/run.sh"), "--device", "cpu"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    model = tmp_path / "runs" / "model.pt"
    report = json.loads((tmp_path / "runs" / "eval" / "report.json").read_text())
    assert report["config"]["judge_ser"].endswith("judge_ser/ser.pt")
    out = tmp_path / "hello.wav"
    spoken = subprocess.run([str(venv / "emomix"), "mix", "Hello there.", "--happy", "1", "--model",
                             str(model), "-o", str(out)], capture_output=True, text=True, timeout=600)
    assert spoken.returncode == 0, spoken.stderr
    wav, _ = sf.read(out)
    assert wav.size > 0 and np.abs(wav).max() > 0.01
