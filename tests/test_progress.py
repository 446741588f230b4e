"""The one progress bar: on stderr, only on a terminal, a no-op handle otherwise."""

from __future__ import annotations

from emomix_cli.progress import progress_bar


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
