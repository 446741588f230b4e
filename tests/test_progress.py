"""The one progress bar: on stderr, only on a terminal, a no-op handle otherwise."""

from __future__ import annotations

from emomix_cli.progress import eta_seconds, format_duration, progress_bar


def test_no_terminal_means_no_bar_and_no_output(capsys):
    with progress_bar("prep", 3) as bar:
        bar.advance()
        bar.update(completed=3, info="done")
    assert not bar.shown
    assert capsys.readouterr() == ("", "")


def test_disabled_bar_stays_silent_on_a_terminal(capsys, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich treats the stream as a terminal
    with progress_bar("prep", 3, enabled=False) as bar:
        bar.advance(3)
    assert not bar.shown and capsys.readouterr() == ("", "")


def test_bar_on_a_terminal_goes_to_stderr_only(capsys, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    with progress_bar("embeddings", 4, completed=1) as bar:
        bar.advance(2)
        bar.update(info="loss 0.5")
        bar.update(completed=4)
    out, err = capsys.readouterr()
    assert bar.shown and out == ""
    assert "embeddings" in err and "4/4" in err and "loss 0.5" in err


def test_plain_lines_replace_the_bar_off_a_terminal_when_asked(capsys):
    with progress_bar("train", 1000, plain_lines=True) as bar:
        bar.line(250, "loss 1.2346", rate=2.0)
        bar.line(900, "loss 0.5000", rate=2.0, seconds_left=10.0)  # a time budget ends first
    out, err = capsys.readouterr()
    assert out == "" and err.splitlines() == ["train 250/1000 loss 1.2346 2.00 steps/s ETA 0:06:15",
                                              "train 900/1000 loss 0.5000 2.00 steps/s ETA 0:00:10"]
    with progress_bar("train", 10) as quiet:  # callers that did not ask stay silent
        quiet.line(5, "loss 1", rate=1.0)
    assert capsys.readouterr() == ("", "")


def test_plain_lines_stay_off_on_a_terminal_and_when_disabled(capsys, monkeypatch):
    with progress_bar("train", 10, plain_lines=True, enabled=False) as bar:
        bar.line(5, "loss 1", rate=1.0)
    monkeypatch.setenv("FORCE_COLOR", "1")
    with progress_bar("train", 10, plain_lines=True) as bar:
        bar.line(5, "loss 1", rate=1.0)  # the drawn bar shows it instead
    assert "steps/s" not in capsys.readouterr().err


def test_eta_and_duration_arithmetic():
    assert format_duration(3725.4) == "1:02:05" and format_duration(-3) == "0:00:00"
    assert eta_seconds(250, 1000, 2.0) == 375.0
    assert eta_seconds(250, 1000, 2.0, seconds_left=60.0) == 60.0
    assert eta_seconds(250, None, 0.0) is None and eta_seconds(1000, 1000, 2.0) == 0.0
