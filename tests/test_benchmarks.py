"""The benchmarks' baselines stay honest: the straightforward U-Net computes the same score."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import bench_decoder, bench_mish, learning_curve, profile_train_step

BENCHMARKS = Path(bench_decoder.__file__).resolve().parent


def test_run_all_lists_every_benchmark_and_rejects_unknown_names():
    listed = subprocess.run([sys.executable, BENCHMARKS / "run.py", "--list", "--device", "cuda"],
                            capture_output=True, text=True, check=True).stdout
    for name in ("decoder", "synthesis", "vocoder", "train", "prep", "cold-start", "app", "app-thread",
                 "train-gpu-bf16"):
        assert f"## {name}:" in listed
    bad = subprocess.run([sys.executable, BENCHMARKS / "run.py", "--only", "nope"], capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown benchmark" in bad.stderr


def test_train_step_profile_times_every_phase_of_a_real_step():
    run = profile_train_step.Profiled(profile_train_step.config(out_size=16, dec_dim=8), batch_size=2)
    phases = run.step()
    keys = [key for key, _ in profile_train_step.PHASES]
    assert sorted(phases) == sorted([*keys, "total"])
    assert sum(phases[k] for k in keys) == pytest.approx(phases["total"])
    assert all(phases[k] > 0 for k in keys if k != "other")  # every hook and boundary fired
    assert phases["bw_dec"] > phases["bw_glue1"] and phases["bw_dec"] > phases["bw_glue2"]
    no_style = run.step(with_style=False)
    assert no_style["ser_fake"] == no_style["bw_style"] == 0.0 and no_style["bw_dec"] > 0


def test_train_step_profile_times_fast_and_native_mish_twins():
    from emomix_cli.tts.unet import Mish

    args = type("Args", (), {"batch": 2, "steps": 1})()
    fast, native = profile_train_step.measure_mish_pair(out_size=16, dec_dim=8, args=args)
    assert fast["total"] > 0 and native["total"] > 0 and fast["params_M"] == native["params_M"]
    assert Mish.native_training is False  # the switch is restored after each step


def test_mish_benchmark_errors_are_float_rounding():
    from emomix_cli.tts.unet import FastMish

    value, gradient = bench_mish.errors(FastMish.apply)
    assert value < 2e-6 and gradient < 1e-6


def test_learning_curve_rows_come_from_val_reports(tmp_path):
    report = {"config": {"split": "val", "temperature": 1.5, "guidance": 1.0, "n_sentences": 2, "vocoder": "hifigan"},
              "per_emotion": {"angry": {"synth": {"voiced_fraction": 0.5}}, "sad": {"synth": {"voiced_fraction": 0.7}}},
              "intelligibility": {"synth": {"wer": 0.25}}, "judge_classification": {"mean_accuracy": 0.8},
              "intensity": {"judge_spearman": {"angry": 1.0}}, "blends": {}, "bar": []}  # fmt: skip
    row = learning_curve.row_from_report(report, "run 3", 1.25, 2600)
    assert row["objective"] == "1.150" and row["voiced"] == "0.600" and row["cpu_hours"] == "1.25"
    path = tmp_path / "learning_curve.csv"
    learning_curve.write_rows(path, [row, {**row, "label": "run 3, w 2", "guidance": "2"}])
    rows = learning_curve.read_rows(path)
    assert [r["label"] for r in rows] == ["run 3", "run 3, w 2"]
    assert "| main | run 3 | 1.25 | 2600 | 1.5 | 1 | 0.25 | 0.60 | 0.80 | 1.00 | 1.15 |" in learning_curve.markdown(rows)
    learning_curve.plot(rows, tmp_path / "learning_curve.png")
    assert (tmp_path / "learning_curve.png").stat().st_size > 0
    report["guidance"] = {"rows": [{"w": 2.0, "wer": 0.3, "voiced_fraction": 0.7, "judge_accuracy": 0.9}]}
    guided = learning_curve.row_from_report(report, "run 3", 1.25, 2600, series="b", guidance=2.0)
    assert guided["guidance"] == "2" and guided["objective"] == "1.300" and guided["rho_ser"] == ""
    with pytest.raises(Exception, match="no guidance sweep at w = 3"):
        learning_curve.row_from_report(report, "run 3", 1.25, 2600, guidance=3.0)
    with pytest.raises(Exception, match="measured on val"):
        learning_curve.row_from_report({**report, "config": {**report["config"], "split": "test"}}, "x", 1, 1)


def test_learning_curve_judges_only_series_snapshots_that_store_their_hours(tmp_path):
    from emomix_cli.checkpoint import save_checkpoint
    from emomix_cli.errors import EmomixError

    bare = save_checkpoint(tmp_path / "last.pt", "train-state", {"step": 10, "model": {}, "ema": {}})
    with pytest.raises(EmomixError, match="stores no series hours; write it with recipes/demo/cpu_train.sh"):
        learning_curve.judge_snapshot(bare, tmp_path / "tts.pt", tmp_path, tmp_path / "out", "10,1.5,1,weighted", 4)
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_a_sampler_setting_reads_its_optional_solver_and_guidance_reference():
    from benchmarks.tune_sampler import parse_setting

    def fields(o):
        return o.steps, o.temperature, o.guidance, o.encoder_condition, o.solver, o.guidance_reference

    assert fields(parse_setting("10,1.5,1,weighted")) == (10, 1.5, 1.0, "weighted", None, None)
    assert fields(parse_setting("4,2,2,base,midpoint,neutral")) == (4, 2.0, 2.0, "base", "midpoint", "neutral")
    assert fields(parse_setting("10,2,1.5,weighted,,neutral")) == (10, 2.0, 1.5, "weighted", None, "neutral")


def test_eval_benchmark_reads_the_time_split_and_prints_one_row_per_thread_setting(tmp_path, capsys):
    from benchmarks import bench_eval

    report = tmp_path / "report.json"
    report.write_text('{"timing": {"utterances": 25, "synthesis_s": 16.0, "vocoder_s": 69.0, '
                      '"judge_s_per_utterance": {"pyin": 0.7, "whisper": 1.1, "dnsmos": null}}}')
    split = bench_eval.split_of(report)
    assert split == {"utterances": 25, "synthesis": 16.0, "vocoder": 69.0, "judge pyin": 0.7, "judge whisper": 1.1}
    runs = [{"wall": w, "cpu": 100.0 + w, "rss_mib": 1400.0 + w, "load": 1.0, **split} for w in (50.0, 40.0)]
    bench_eval.print_table([(1, runs)], "")
    row = capsys.readouterr().out.splitlines()[-1]
    assert row.startswith("| 1 | 40.0 | 45.0 | 140.0 | 1450 | 1.0, 1.0 | 25 | 16.0 | 69.0 | pyin 0.70, whisper 1.10 |")
    assert bench_eval.eval_command(tmp_path, 0, [])[-4:] == ["--max-sentences", "1", "--out", str(tmp_path)]


def test_loss_curves_read_train_logs_across_resumes(tmp_path):
    from benchmarks import loss_curves

    log = tmp_path / "train.log"
    log.write_text(
        "2026-12-03 08:00:00 start kind=tts step=0/10 device=cpu\n"
        "2026-12-03 08:30:00 step 25 loss 3.0 dur_loss 0.5 prior_loss 1.2 diff_loss 1.3 style_loss 9\n"
        "2026-12-03 09:00:00 step 50 loss 2.0 dur_loss 0.4 prior_loss 1.1 diff_loss 0.5 style_loss 9\n"
        "2026-12-03 10:00:00 start kind=tts step=50/10 device=cpu resumed_from=x\n"
        "2026-12-03 10:15:00 step 75 loss 1.0 dur_loss 0.3 prior_loss 1.0 diff_loss 0.1 style_loss 9\n")
    curve = loss_curves.read_log(log)
    assert curve["hours"].tolist() == [0.5, 1.0, 1.25]  # the hour between runs is not counted
    assert curve["step"].tolist() == [25, 50, 75] and curve["diff_loss"].tolist() == [1.3, 0.5, 0.1]
    assert loss_curves.smooth(curve["loss"], 2).tolist() == [3.0, 2.5, 1.5]


def test_natural_gate_lines_pass_and_fail_on_their_limits():
    from benchmarks import natural_gate

    def cell(f0, loud, rate, wer=0.0, voiced=0.8, vocoded=0.8):
        return {"wer": wer, "dnsmos": 3.8, "voiced": voiced, "vocoded_voiced": vocoded,
                "f0_median": f0, "loudness_db": loud, "rate": rate}

    def speaker(base):
        return {"neutral": cell(base, -22, 13), "angry": cell(base * 1.3, -14, 14), "happy": cell(base * 1.4, -19, 13),
                "sad": cell(base * 0.85, -29, 11), "surprise": cell(base * 1.4, -18, 13)}

    cells = {f"{s}/{e}": c for s, base in (("a", 120), ("b", 180)) for e, c in speaker(base).items()}
    assert all(passed for _, passed, _ in natural_gate.gate_lines(cells, {"judge": 0.95}))
    cells["a/sad"] = cell(170, -29, 11, wer=0.2, vocoded=0.2)  # sad above angry, unintelligible, unvoiced
    failed = {line.split(" ")[0] for line, passed, _ in natural_gate.gate_lines(cells, {"judge": 0.85}) if not passed}
    assert failed == {"Whisper", "vocoded", "sad", "SER"}


def test_guidance_positions_are_the_move_over_the_w1_move_per_feature_and_on_the_line():
    from benchmarks.guidance_positions import FEATURES, positions

    def row(f0, span, loud, rate):
        return dict(zip(FEATURES, (f0, span, loud, rate), strict=True))

    rows = {}
    for i in range(2):
        rows["neutral", 1.0, i] = row(100 + i, 4.0, -30.0, 10.0)
        rows["angry", 1.0, i] = row(120 + i, 8.0, -25.0, 11.0)
        rows["angry", 2.0, i] = row(140 + i, 6.0, -20.0, 12.0)  # twice as far, but range half back
    table = positions(rows, 2, ["angry"], [1.0, 2.0])
    assert table["angry"][1.0] == {f: 1.0 for f in (*FEATURES, "line")}
    got = table["angry"][2.0]
    assert got["f0_median"] == 2.0 and got["loudness_db"] == 2.0 and got["rate"] == 2.0
    assert got["f0_range_st"] == 0.5
    assert 0.5 < got["line"] < 2.0  # the projection weighs each cue by its w = 1 move


def test_default_gate_prints_every_cell_beside_ground_truth_and_fails_on_a_failed_line(tmp_path, capsys):
    from benchmarks import default_gate

    def cell(voiced, rate):
        return {"synth": {"voiced_fraction": voiced, "f0_median": 150, "rate": rate, "p808": 3.8, "wer": 0.0},
                "gt": {"p808": 3.9, "f0_median": 160, "rate": 14, "wer": 0.0}, "gt_vocoded": {"voiced_fraction": 0.7}}  # fmt: skip

    report = {"emotions": ["angry", "sad"], "config": {"model": "m.pt", "split": "test", "n_sentences": 1,
                                                       "sentences": [{"speaker": "x"}]},
              "per_emotion": {"angry": cell(0.6, 15), "sad": cell(0.6, 11)},
              "per_speaker": {"x": {"angry": cell(0.6, 15), "sad": cell(0.2, 11)}},
              "intelligibility": {"synth": {"wer": 0.0}, "gt": {"wer": 0.0}},
              "transcripts": [{"label": "angry", "i": 0, "ref": "a b", "hyp": "a b"}]}  # fmt: skip
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    assert default_gate.main([str(path), "--json", str(tmp_path / "gate.json")]) == 1  # sad x: voiced 0.2 < 0.35
    out = capsys.readouterr().out
    assert "| x | sad | 0.20 / 0.70 |" in out and "| all | angry | 0.60 / 0.70 |" in out
    assert "Whisper WER per speaker: x 0.00" in out
    lines = {line["check"]: line for line in json.loads((tmp_path / "gate.json").read_text())}
    assert lines["voiced fraction every speaker × emotion ≥ 0.35"]["passed"] is False
    assert lines["DNSMOS P.808 ≥ 3.6"]["passed"] is True
