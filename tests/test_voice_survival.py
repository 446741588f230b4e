"""benchmarks/voice_survival.py: its arithmetic, its one-line errors and (slow) a real run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from emomix_cli.demo_corpus import EMOTIONS

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "voice_survival.py"


@pytest.fixture(scope="module")
def survival():
    spec = importlib.util.spec_from_file_location("voice_survival", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def result(speaker, emotion, real, vocoded, f0=100.0):
    return {"id": f"{speaker}_{emotion}", "speaker": speaker, "voice": f"v-{speaker}", "emotion": emotion,
            "text": "a b", "real_voiced": real, "vocoded_voiced": vocoded, "real_f0": f0, "vocoded_f0": f0}


def test_ratios_are_of_the_per_emotion_means_and_a_voice_scores_its_lowest(survival):
    results = [result("a", e, 0.8, 0.8) for e in EMOTIONS]
    results[3] = result("a", EMOTIONS[3], 0.8, 0.2)
    results += [result("a", EMOTIONS[3], 0.6, 0.4)]  # second sentence: means 0.7 -> 0.3
    results += [result("b", e, 0.5, None) for e in EMOTIONS]  # pYIN found no active frame
    rows = {row["speaker"]: row for row in survival.summarise(results, wer=False)}
    sad = rows["a"]["emotions"][EMOTIONS[3]]
    assert sad["real"] == pytest.approx(0.7) and sad["vocoded"] == pytest.approx(0.3)
    assert sad["ratio"] == pytest.approx(0.3 / 0.7) == rows["a"]["min_ratio"]
    assert rows["a"]["emotions"][EMOTIONS[0]]["ratio"] == pytest.approx(1.0)
    assert rows["b"]["min_ratio"] is None and rows["b"]["emotions"][EMOTIONS[0]]["vocoded"] is None


@pytest.mark.parametrize("argv, message", [
    (["--sentences", "0"], "--sentences must be 1..15"),
    (["--workers", "0"], "--workers must be at least 1"),
    (["--corpus", "x", "--voices", "en-us+f2"], "drop --voices"),
    (["--voices", "en+f4", "en+f4"], "twice"),
    (["--n-speakers", "9"], "--n-speakers must be 1..8"),
])
def test_bad_arguments_exit_2_with_one_line(survival, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        survival.parse_args(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and err.count("\n") == 1


def test_an_unknown_voice_or_corpus_is_one_line_and_exit_1(survival, capsys, tmp_path):
    assert survival.main(["--voices", "en-us+nope"]) == 1
    assert survival.main(["--corpus", str(tmp_path)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and "no voice variant 'nope'" in lines[0] and "manifest.jsonl not found" in lines[1]


@pytest.mark.slow
def test_a_real_run_measures_every_emotion_of_a_voice_and_writes_json(survival, tmp_path, capsys):
    report = survival.run(survival.parse_args(["--voices", "en-us+f2", "--sentences", "1",
                                               "--json", str(tmp_path / "out.json")]))
    (row,) = report["summary"]
    assert set(row["emotions"]) == set(EMOTIONS) and len(report["utterances"]) == len(EMOTIONS)
    for emotion in row["emotions"].values():
        assert 0.3 < emotion["real"] <= 1.0 and emotion["vocoded"] is not None and emotion["f0_real"] > 100
    assert (tmp_path / "out.json").is_file() and "en-us+f2" in capsys.readouterr().out
