"""The command line end to end (Typer's CliRunner): every command, and bad input as one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from typer.testing import CliRunner

import emomix_cli
from emomix_cli.assets import DEMO_MODEL
from emomix_cli.cli import app, parse_emotion_flags
from emomix_cli.errors import EmomixError

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def said(result) -> str:
    """The console output with its whitespace collapsed. Rich wraps lines at the terminal's width
    (80 columns without a terminal, or $COLUMNS when it is set), breaking them at spaces, so a
    phrase is looked for here, never in ``result.output`` as printed."""
    return " ".join(result.output.split())


def assert_one_line_error(result, *fragments):
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit)
    text = said(result)
    assert "Traceback" not in text
    assert "error:" in text
    for fragment in fragments:
        assert fragment in text, text


@pytest.mark.parametrize("command", [[], ["prep"], ["train", "ser"], ["train", "tts"], ["prototypes"], ["mix"], ["eval"]])
def test_every_command_has_help_with_an_example(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    if command:
        assert f"Example: emomix {' '.join(command)} " in said(result)


def test_emotion_flags_parse_both_spellings():
    assert parse_emotion_flags(["--angry", "0.6", "--happy=0.4"]) == {"angry": 0.6, "happy": 0.4}
    with pytest.raises(EmomixError, match="needs a number"):
        parse_emotion_flags(["--angry", "lots"])
    with pytest.raises(EmomixError, match="twice"):
        parse_emotion_flags(["--sad", "0.1", "--sad", "0.2"])


def test_mix_with_the_shipped_model_writes_a_wav_and_a_mel_png(tmp_path):
    out, png = tmp_path / "out.wav", tmp_path / "mel.png"
    result = invoke("mix", "Good morning.", "--angry", "0.6", "--happy", "0.4", "--steps", "2",
                    "-o", out, "--mel-png", png)
    assert result.exit_code == 0, result.output
    audio, rate = sf.read(out)
    assert rate == 22050 and len(audio) > 2000 and np.abs(audio).max() > 0.01
    assert png.stat().st_size > 1000
    assert "0.60 angry + 0.40 happy" in said(result) and "RTF" in said(result)


# what text -> wav does not use: training, plotting, evaluation, alignment, pretrained encoders
NOT_FOR_MIX = ("numba", "matplotlib", "librosa", "scipy", "transformers", "tensorboard", "sympy",
               "torch._dynamo", "yaml", "emomix_cli.datasets", "emomix_cli.train_loop")


def test_mix_in_a_fresh_process_imports_only_what_it_uses(tmp_path):
    """`emomix mix` as a new process: it writes the wav, and none of NOT_FOR_MIX was imported."""
    script = (
        "import sys\nfrom emomix_cli.cli import main\n"
        "sys.argv = ['emomix', 'mix', 'Hi.', '--happy', '1', '--steps', '2', '-o', sys.argv[1]]\n"
        "try:\n    main()\nexcept SystemExit as done:\n    assert not done.code, done.code\n"
        f"print(' '.join(name for name in {NOT_FOR_MIX!r} if name in sys.modules))"
    )
    package_root = str(Path(emomix_cli.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    out = tmp_path / "hi.wav"
    result = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 1000
    assert result.stdout.split() == []


def test_same_seed_same_audio_and_batch_file(tmp_path):
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    for path in (a, b):
        assert invoke("mix", "Hello.", "--sad", "0.5", "--steps", "2", "--seed", "3", "-o", path).exit_code == 0
    assert a.read_bytes() == b.read_bytes()
    lines = tmp_path / "lines.txt"
    lines.write_text("# comment\nangry=0.6,happy=0.4|Hello there.\nsad|Goodbye.\n")
    result = invoke("mix", "--batch", lines, "--steps", "2", "-o", tmp_path / "batch")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "batch").iterdir()) == ["001.wav", "002.wav", "lines.tsv"]


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--angy", "0.6"], ["unknown emotion 'angy'", "angry, happy, neutral, sad, surprise"]),
        (["--angry", "-0.2"], ["angry", ">= 0"]),
        (["--angry", "0.8", "--sad", "0.4"], ["sum to 1.2"]),
        (["--angry", "0", "--sad", "0"], ["positive weight"]),
        (["--angry", "nan"], ["finite"]),
    ],
)
def test_bad_weights_are_one_line_errors_and_write_nothing(tmp_path, args, fragments):
    out = tmp_path / "keep.wav"
    out.write_bytes(b"precious")
    result = invoke("mix", "Hello.", *args, "-o", out)
    assert_one_line_error(result, *fragments)
    assert out.read_bytes() == b"precious"


def test_griffin_lim_iterations_option(tmp_path):
    few, many = tmp_path / "few.wav", tmp_path / "many.wav"
    for path, n_iter in ((few, "1"), (many, "8")):
        result = invoke("mix", "Hi.", "--happy", "1", "--steps", "2", "--vocoder", "griffinlim",
                        "--gl-iters", n_iter, "-o", path)
        assert result.exit_code == 0, result.output
    assert few.read_bytes() != many.read_bytes()
    assert_one_line_error(
        invoke("mix", "Hi.", "--happy", "1", "--vocoder", "hifigan", "--gl-iters", "4", "-o", tmp_path / "x.wav"),
        "--gl-iters",
    )


def test_batch_refuses_text_and_emotion_flags_and_honours_mel_png(tmp_path):
    lines = tmp_path / "lines.txt"
    lines.write_text("angry=0.6,happy=0.4|Hello there.\n")
    out = tmp_path / "batch"
    assert_one_line_error(invoke("mix", "--batch", lines, "--angry", "1", "-o", out), "--batch", "--angry")
    assert_one_line_error(invoke("mix", "Hello.", "--batch", lines, "-o", out), "--batch", "Hello.")
    assert not out.exists()
    result = invoke("mix", "--batch", lines, "--steps", "2", "--mel-png", "yes", "-o", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["001.png", "001.wav", "lines.tsv"]


def test_guidance_on_the_shipped_model_changes_the_audio(tmp_path):
    """The shipped model was trained with condition dropout (models without it refuse w != 1:
    tests/test_synthesis.py)."""
    plain, guided = tmp_path / "plain.wav", tmp_path / "guided.wav"
    for path, w in ((plain, "1"), (guided, "2.5")):
        result = invoke("mix", "Hi.", "--happy", "1", "--steps", "2", "--guidance", w, "-o", path)
        assert result.exit_code == 0, result.output
    assert "guidance 2.5" in said(result)
    assert plain.read_bytes() != guided.read_bytes()


def test_guidance_from_neutral_on_the_shipped_model(tmp_path):
    out = tmp_path / "neutral_ref.wav"
    bad = invoke("mix", "Hi.", "--happy", "1", "--guidance", "2", "--guidance-reference", "zero", "-o", out)
    assert_one_line_error(bad, "unknown guidance reference 'zero'")
    assert not out.exists()
    result = invoke("mix", "Hi.", "--happy", "1", "--steps", "2", "--guidance", "2",
                    "--guidance-reference", "neutral", "-o", out)
    assert result.exit_code == 0, result.output
    assert "guidance 2 from neutral" in said(result)
    assert out.stat().st_size > 1000


def test_verbose_prints_the_cause_chain(tmp_path):
    quiet = invoke("mix", "Hi.", "--happy", "1", "--solver", "rk9", "-o", tmp_path / "x.wav")
    loud = invoke("--verbose", "mix", "Hi.", "--happy", "1", "--solver", "rk9", "-o", tmp_path / "x.wav")
    assert_one_line_error(quiet, "unknown solver 'rk9'")
    assert "Traceback" in said(loud) and "unknown solver 'rk9'" in said(loud) and loud.exit_code != 0


def test_empty_text_missing_and_foreign_checkpoints(tmp_path):
    assert_one_line_error(invoke("mix", "   ", "--happy", "1", "-o", tmp_path / "x.wav"), "nothing to speak")
    assert_one_line_error(invoke("mix", "Hi.", "--happy", "1", "--model", tmp_path / "none.pt"), "not found")
    foreign = tmp_path / "foreign.pt"
    foreign.write_bytes(b"\x00" * 64)
    assert_one_line_error(invoke("mix", "Hi.", "--happy", "1", "--model", foreign), "not a readable checkpoint")
    assert_one_line_error(invoke("mix", "Hi.", "--happy", "1", "--model", DEMO_MODEL.parent.parent / "nothing"), "not found")
    assert not list(tmp_path.glob("*.wav"))


@pytest.mark.parametrize("args, fragments", [
    (["東京", "--happy", "1"], ["English voice cannot read '東' (U+6771), '京' (U+4EAC)", "--allow-foreign-text"]),
    (["...", "--happy", "1"], ["nothing to speak in '...'"]),
    (["--happy", "1"], ["text to speak is missing", 'emomix mix "Hello there."']),
    (["--happy=1"], ["text to speak is missing"]),
    ([], ["text to speak is missing"]),
])
def test_text_the_voice_cannot_read_is_refused_in_one_line(tmp_path, args, fragments):
    out = tmp_path / "keep.wav"
    out.write_bytes(b"precious")
    result = invoke("mix", *args, "-o", out)
    assert_one_line_error(result, *fragments)
    assert len(result.output.strip().splitlines()) == 1 and out.read_bytes() == b"precious"


def test_accented_latin_speaks_and_foreign_letters_need_the_option(tmp_path):
    for text, extra in (("Café naïve, señor.", []), ("Hi 東京.", ["--allow-foreign-text"])):
        out = tmp_path / "ok.wav"
        result = invoke("mix", text, "--happy", "1", "--steps", "2", "--vocoder", "griffinlim", *extra, "-o", out)
        assert result.exit_code == 0, result.output
        assert sf.info(out).duration > 0.3


def test_batch_names_every_bad_line_and_maps_lines_to_files(tmp_path):
    lines, out = tmp_path / "lines.txt", tmp_path / "batch"
    lines.write_text("happy|Hello there.\nsad|...\n\nangry|東京\n")
    assert_one_line_error(invoke("mix", "--batch", lines, "-o", out), "2 bad lines, nothing written",
                          "line 2: nothing to speak", "line 4: the English voice cannot read '東'")
    assert not out.exists()
    lines.write_text("happy|Hello there.\n# skipped\nsad|Goodbye.\n")
    result = invoke("mix", "--batch", lines, "--steps", "2", "--vocoder", "griffinlim", "-o", out)
    assert result.exit_code == 0, result.output
    assert f"which line made which wav: {out / 'lines.tsv'}" in said(result)
    assert (out / "lines.tsv").read_text().splitlines()[1:] == [
        "1\t001.wav\t1.00 happy\tHello there.", "3\t002.wav\t1.00 sad\tGoodbye."]


def test_train_tts_without_its_ser_or_prototypes_names_the_command_that_makes_them(tmp_path):
    config = tmp_path / "tts.yaml"
    config.write_text(yaml.safe_dump({"features": str(tmp_path / "features"), "ser": str(tmp_path / "ser" / "ser.pt"),
                                      "prototypes": str(tmp_path / "prototypes.pt"), "run_dir": str(tmp_path / "tts")}))
    assert_one_line_error(invoke("train", "tts", "--config", config), f"SER checkpoint {tmp_path / 'ser' / 'ser.pt'} not found",
                          "`emomix train ser --config", f"run_dir={tmp_path / 'ser'}")
    (tmp_path / "ser").mkdir()
    (tmp_path / "ser" / "ser.pt").write_bytes(b"stand-in")  # only its existence is checked first
    assert_one_line_error(invoke("train", "tts", "--config", config), "prototypes file", "`emomix prototypes --features")
    assert not (tmp_path / "tts").exists()


def test_prep_reads_a_manifest_corpus_and_reports_a_corrupt_wav(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    t = np.arange(11025) / 22050
    rows = []
    for i, emotion in enumerate(["happy", "sad", "happy"]):
        sf.write(corpus / f"u{i}.wav", (0.2 * np.sin(2 * np.pi * (200 + 50 * i) * t)).astype(np.float32), 22050)
        rows.append({"wav": f"u{i}.wav", "text": f"Sentence number {i}.", "speaker": "s1", "emotion": emotion, "split": "train"})
    (corpus / "bad.wav").write_bytes(b"RIFFxxxxWAVEnot really")
    rows.append({"wav": "bad.wav", "text": "Broken.", "speaker": "s1", "emotion": "sad", "split": "train"})
    (corpus / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = invoke("prep", "--dataset", "manifest", corpus, "--out", tmp_path / "feat")
    assert result.exit_code == 0, result.output
    manifest = (tmp_path / "feat" / "manifest.jsonl").read_text().splitlines()
    assert len(manifest) == 3
    assert json.loads((tmp_path / "feat" / "emotions.json").read_text()) == ["happy", "sad"]


def test_prep_wrong_layout_and_unknown_dataset_are_one_line_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_one_line_error(invoke("prep", "--dataset", "esd", tmp_path / "empty", "--out", tmp_path / "f"), "ESD")
    assert_one_line_error(invoke("prep", "--dataset", "timit", tmp_path, "--out", tmp_path / "f"), "unknown dataset")


def test_train_ser_prototypes_and_tts_from_the_cli(tmp_path, tiny_store):
    ser_cfg = tmp_path / "ser.yaml"
    ser_cfg.write_text(yaml.safe_dump({
        "features": str(tiny_store), "run_dir": str(tmp_path / "ser"), "crop_frames": 40,
        "model": {"conv1_channels": 4, "conv_channels": 8, "n_conv": 2, "linear_dim": 16, "lstm_hidden": 8, "embed_dim": 8},
        "train": {"steps": 4, "batch_size": 6, "lr": 0.01, "log_every": 2, "val_every": 0, "ckpt_every": 0, "device": "cpu"},
    }))
    result = invoke("train", "ser", "--config", ser_cfg, "train.steps=3")
    assert result.exit_code == 0, result.output
    ser = tmp_path / "ser" / "ser.pt"
    assert "step 3 " in (tmp_path / "ser" / "train.log").read_text()
    result = invoke("prototypes", "--features", tiny_store, "--ser", ser, "--out", tmp_path / "proto.pt")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "proto_pca.png").is_file()
    tts_cfg = tmp_path / "tts.yaml"
    tts_cfg.write_text(yaml.safe_dump({
        "features": str(tiny_store), "ser": str(ser), "prototypes": str(tmp_path / "proto.pt"), "preset": "small",
        "model": {"n_enc_channels": 32, "filter_channels": 64, "filter_channels_dp": 32, "n_enc_layers": 1,
                  "spk_emb_dim": 8, "emo_emb_dim": 8, "dec_dim": 8, "dim_mults": [1, 2]},
        "out_size": 32, "n_val_steps": 2, "run_dir": str(tmp_path / "tts"),
        "train": {"steps": 2, "batch_size": 4, "log_every": 1, "val_every": 0, "ckpt_every": 0, "device": "cpu"},
    }))
    result = invoke("train", "tts", "--config", tts_cfg)
    assert result.exit_code == 0, result.output
    model = tmp_path / "tts" / "tts.pt"
    result = invoke("mix", "ðə", "--angry", "0.5", "--model", model, "--steps", "2", "-o", tmp_path / "t.wav")
    assert result.exit_code == 0, result.output
    assert_one_line_error(invoke("train", "tts", "--config", tts_cfg, "train.stepz=3"), "stepz")
    assert_one_line_error(invoke("train", "tts", "--config", tmp_path / "missing.yaml"), "not found")
    assert_one_line_error(invoke("mix", "Hi.", "--happy", "1", "--model", ser), "'ser' checkpoint")


def test_eval_check_exits_1_when_the_bar_fails(tmp_path, monkeypatch):
    import emomix_cli.evaluate as evaluate
    import emomix_cli.evaluate.judges as judges
    from emomix_cli.evaluate.schema import BarLine, Config, Report

    lines = [BarLine("Whisper WER", 0.4, 0.2, False), BarLine("voiced", 0.9, 0.8, True)]
    report = Report(config=Config(model=str(DEMO_MODEL), n_sentences=1), bar=lines)
    monkeypatch.setattr(judges, "load_judges", lambda *args, **kwargs: None)
    monkeypatch.setattr(evaluate, "run_eval", lambda *args, **kwargs: report)  # the judging is tested in test_eval
    monkeypatch.setattr(evaluate, "print_report", lambda report: None)
    failed = invoke("eval", "--out", tmp_path, "--max-sentences", "1", "--check")
    assert failed.exit_code == 1
    assert_one_line_error(failed, "quality bar of espeak: 1 of 2 judged lines fail: Whisper WER")
    assert invoke("eval", "--out", tmp_path, "--max-sentences", "1").exit_code == 0  # without --check: a report
    lines[0].passed = True
    assert invoke("eval", "--out", tmp_path, "--max-sentences", "1", "--check").exit_code == 0


def test_models_lists_the_shipped_models_with_the_default_marked():
    result = invoke("models", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    espeak = next(row for row in rows if row["name"] == "espeak")
    assert espeak["default"] and espeak["family"] == "flow1d"
    assert espeak["emotions"] == ["angry", "happy", "neutral", "sad", "surprise"]
    assert len(espeak["voices"]) == 4 and 5 < espeak["megabytes"] < 12
    natural = next(row for row in rows if row["name"] == "natural")
    assert not natural["default"] and natural["family"] == "flow1d"
    assert natural["emotions"] == espeak["emotions"] and len(natural["voices"]) == 4
    assert 5 < natural["megabytes"] <= 12  # issue 27's size limit
    table = invoke("models")
    assert table.exit_code == 0 and "espeak (default)" in table.output and "natural" in table.output


def test_each_shipped_model_has_its_corpus_judge_and_speaks_by_name(tmp_path):
    from emomix_cli.assets import ASSETS, MODELS, judge_for_model

    assert judge_for_model(MODELS["natural"].path) == ASSETS / "judge_ser_natural.pt"
    assert judge_for_model(MODELS["espeak"].path) == ASSETS / "judge_ser.pt"
    out = tmp_path / "natural.wav"
    result = invoke("mix", "Hi there.", "--sad", "0.5", "--model", "natural", "--vocoder", "griffinlim",
                    "--gl-iters", "2", "--steps", "2", "-o", out)
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 1000


def test_model_by_name_speaks_and_an_unknown_name_lists_the_known_ones(tmp_path):
    out = tmp_path / "named.wav"
    result = invoke("mix", "Hi there.", "--happy", "1", "--model", "espeak", "--vocoder", "griffinlim",
                    "--gl-iters", "2", "-o", out)
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 1000
    refused = invoke("mix", "Hi there.", "--happy", "1", "--model", "espeek", "-o", tmp_path / "x.wav")
    assert_one_line_error(refused, "shipped models: espeak")
    assert not (tmp_path / "x.wav").exists()


def test_model_path_finds_shipped_models_by_name_and_paths_as_paths(tmp_path):
    from emomix_cli.assets import DEFAULT_MODEL, MODELS, model_path

    assert model_path(None) == MODELS[DEFAULT_MODEL].path == model_path(DEFAULT_MODEL)
    assert model_path(str(DEMO_MODEL)) == DEMO_MODEL
    with pytest.raises(EmomixError, match="checkpoint not found"):
        model_path(tmp_path / "missing.pt")


def test_guidance_timing_smoothing_and_interval_options_reach_the_synthesis(tmp_path, monkeypatch):
    import emomix_cli.synthesis as synthesis

    seen = []
    real = synthesis.synthesize_mels

    def spy(bundle, text, weights, options=None):
        seen.append(options)
        return real(bundle, text, weights, options)

    monkeypatch.setattr(synthesis, "synthesize_mels", spy)
    common = ["mix", "Go.", "--angry", "1", "--steps", "2", "--guidance", "2", "--vocoder", "griffinlim",
              "--gl-iters", "2"]
    assert invoke(*common, "--guide-durations", "-o", tmp_path / "a.wav").exit_code == 0
    assert invoke(*common, "--guidance-smoothing", "0", "-o", tmp_path / "b.wav").exit_code == 0
    assert (seen[0].guide_durations, seen[0].smoothing()) == (True, 2.0)
    assert (seen[1].guide_durations, seen[1].smoothing()) == (False, 0.0)  # the defaults: keep, 2
    assert sf.info(tmp_path / "a.wav").frames != sf.info(tmp_path / "b.wav").frames  # timing moved
    assert_one_line_error(invoke(*common, "--guidance-smoothing", "-1", "-o", tmp_path / "c.wav"),
                          "guidance smoothing must be a finite number of mel bins ≥ 0, got -1.0")
    assert not (tmp_path / "c.wav").exists()
    assert invoke(*common, "--guidance-interval", "0.5", "-o", tmp_path / "e.wav").exit_code == 0
    assert seen[-1].guidance_interval == 0.5 and seen[1].guidance_interval == 1.0  # the fallback: every step
    assert_one_line_error(invoke(*common, "--guidance-interval", "1.5", "-o", tmp_path / "f.wav"),
                          "guidance interval must be a noise level in [0, 1], got 1.5")
    assert not (tmp_path / "f.wav").exists()
    assert_one_line_error(invoke(*common, "--guide-durations", "--guidance-reference", "null", "-o", tmp_path / "d.wav"),
                          "--guide-durations extrapolates from Neutral's timing; add --guidance-reference neutral")
