"""The benchmark scripts: their runner, their measurements and their baselines stay honest."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_run_all_lists_every_benchmark_and_rejects_unknown_names():
    listed = subprocess.run([sys.executable, BENCHMARKS / "run.py", "--list", "--device", "cuda"],
                            capture_output=True, text=True, check=True).stdout
    for name in ("decoder", "synthesis", "vocoder", "train", "prep", "train-gpu-bf16"):
        assert f"## {name}:" in listed
    bad = subprocess.run([sys.executable, BENCHMARKS / "run.py", "--only", "nope"], capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown benchmark" in bad.stderr


def test_train_step_profile_times_every_phase_of_a_real_step():
    profile = _load("profile_train_step")
    run = profile.Profiled(profile.config(out_size=16, dec_dim=8), batch_size=2)
    phases = run.step()
    keys = [key for key, _ in profile.PHASES]
    assert sorted(phases) == sorted([*keys, "total"])
    assert sum(phases[k] for k in keys) == pytest.approx(phases["total"])
    assert all(phases[k] > 0 for k in keys if k != "other")  # every hook and boundary fired
    assert phases["bw_dec"] > phases["bw_glue1"] and phases["bw_dec"] > phases["bw_glue2"]
    no_style = run.step(with_style=False)
    assert no_style["ser_fake"] == no_style["bw_style"] == 0.0 and no_style["bw_dec"] > 0


def test_train_step_profile_times_fast_and_native_mish_twins():
    from emomix_cli.tts.unet import Mish

    profile = _load("profile_train_step")
    args = type("Args", (), {"batch": 2, "steps": 1})()
    fast, native = profile.measure_mish_pair(out_size=16, dec_dim=8, args=args)
    assert fast["total"] > 0 and native["total"] > 0 and fast["params_M"] == native["params_M"]
    assert Mish.native_training is False  # the switch is restored after each step


def test_mish_benchmark_errors_are_float_rounding():
    from emomix_cli.tts.unet import FastMish

    value, gradient = _load("bench_mish").errors(FastMish.apply)
    assert value < 2e-6 and gradient < 1e-6


def test_learning_curve_rows_come_from_val_reports(tmp_path):
    curve = _load("learning_curve")
    report = {"config": {"split": "val", "temperature": 1.5, "guidance": 1.0, "n_sentences": 2, "vocoder": "hifigan"},
              "per_emotion": {"angry": {"synth": {"voiced_fraction": 0.5}}, "sad": {"synth": {"voiced_fraction": 0.7}}},
              "intelligibility": {"synth": {"wer": 0.25}}, "judge_classification": {"mean_accuracy": 0.8},
              "intensity": {"judge_spearman": {"angry": 1.0}}, "blends": {}, "bar": []}  # fmt: skip
    row = curve.row_from_report(report, "run 3", 1.25, 2600)
    assert row["objective"] == "1.150" and row["voiced"] == "0.600" and row["cpu_hours"] == "1.25"
    path = tmp_path / "curve.csv"
    curve.write_rows(path, [row, {**row, "label": "run 3, w 2", "guidance": "2"}])
    rows = curve.read_rows(path)
    assert [r["label"] for r in rows] == ["run 3", "run 3, w 2"]
    assert "| main | run 3 | 1.25 | 2600 | 1.5 | 1 | 0.25 | 0.60 | 0.80 | 1.00 | 1.15 |" in curve.markdown(rows)
    curve.plot(rows, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 0
    report["guidance"] = {"rows": [{"w": 2.0, "wer": 0.3, "voiced_fraction": 0.7, "judge_accuracy": 0.9}]}
    guided = curve.row_from_report(report, "run 3", 1.25, 2600, series="b", guidance=2.0)
    assert guided["guidance"] == "2" and guided["objective"] == "1.300" and guided["rho_ser"] == ""
    with pytest.raises(Exception, match="no guidance sweep at w = 3"):
        curve.row_from_report(report, "run 3", 1.25, 2600, guidance=3.0)
    with pytest.raises(Exception, match="measured on val"):
        curve.row_from_report({**report, "config": {**report["config"], "split": "test"}}, "x", 1, 1)
