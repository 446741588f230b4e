"""``emomix eval --html``: the samples page (emomix_cli/evaluate/samples_page.py), built by a real
``run_eval`` on tiny models with stand-in judges, checked as files and (slow) in headless Chromium."""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from emomix_cli.evaluate.samples_page import figures, file_stem, sections
from emomix_cli.synthesis import SynthesisOptions
from tests.conftest import make_tiny_store
from tests.test_eval import ToneVocoder, _tiny_models, fake_judges

EMOTIONS = ["angry", "neutral", "sad"]  # _tiny_models' emotions


class Links(HTMLParser):
    """Every src/href of a page; its <audio>, <img>, rows, and cells left empty ("—")."""

    def __init__(self):
        super().__init__()
        self.links, self.audio, self.images, self.rows, self.empty = [], 0, 0, 0, 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.links += [attrs[key] for key in ("src", "href") if key in attrs]
        self.audio += tag == "audio"
        self.images += tag == "img"
        self.rows += tag == "tr"
        self.empty += tag == "td" and attrs.get("class") == "none"


@pytest.fixture(scope="module")
def eval_folder(tmp_path_factory) -> Path:
    from emomix_cli.evaluate import run_eval

    root = tmp_path_factory.mktemp("samples")
    model, ser = _tiny_models(root)
    out = root / "eval"
    run_eval(model, ser, out, features=make_tiny_store(root / "features"), split="val", max_sentences=2,
             options=SynthesisOptions(steps=1), vocoder=ToneVocoder(), judges=fake_judges(ser),
             guidance_levels=[], progress=False, html=True)  # fmt: skip
    return out


def test_the_page_links_only_files_inside_its_folder(eval_folder, tmp_path):
    page = (eval_folder / "index.html").read_text(encoding="utf-8")
    links = Links()
    links.feed(page)
    assert links.links and not re.search(r"(https?:)?//", page)  # no network, no CDN
    moved = shutil.copytree(eval_folder, tmp_path / "elsewhere")  # as if unzipped anywhere
    for link in links.links:
        assert not link.startswith("/") and (moved / link).is_file(), link
    # 2 sentences x (3 emotions beside 3 real ones, 2 emotions x 3 intensity steps, 2 blends);
    # a blend that eval gave only some sentences (a small eval shares the pairs out) is "—" in the others
    assert links.images + links.empty == 2 * (3 + 3 + 6 + 2) and links.images >= 2 * (3 + 3 + 6) + 2
    assert links.audio == links.images - 2 * 3  # the tiny store keeps no wavs: real cells show the mel only
    assert page.count("no audio (the store has no wav)") == 2 * 3
    assert links.rows == 3 * (1 + 2)  # three tables, a header and two sentences each


def test_the_page_reuses_evals_samples_and_shows_the_judges_figures(eval_folder):
    page = (eval_folder / "index.html").read_text(encoding="utf-8")
    for emotion in EMOTIONS:
        assert f'src="samples/{emotion}.wav"' in page  # sentence 0: the wav eval already wrote
        assert f'src="page/s2_{emotion}.wav"' in page
    for label in ("angry@0.25", "sad@0.75", "angry+sad", "sad+angry"):
        pictures = [eval_folder / "page" / f"s{i}_{file_stem(label)}.png" for i in (1, 2)]
        assert f"<th>{label}</th>" in page and any(picture.is_file() for picture in pictures)
    assert "voiced 1.00" in page and "WER 0.00" in page  # fake judges: fully voiced, heard right
    assert re.search(r"SER (angry|neutral|sad) [01]\.\d\d", page)
    assert "synthetic<br><span>spk_a</span>" in page


def test_figures_of_one_utterance_by_hand():
    record = {"prosody": {"voiced_fraction": 0.8}, "ref": "The cat sat.", "hyp": "the cat sit",
              "judge": np.array([0.1, 0.7, 0.2])}
    assert figures(record, ["angry", "happy", "sad"]) == {"voiced": 0.8, "wer": pytest.approx(1 / 3),
                                                         "ser": ("happy", pytest.approx(0.7))}
    assert figures(None, None) == {"voiced": None, "wer": None, "ser": None}
    assert figures({"judge": np.array([0.4, 0.6]), "hyp": None}, None)["ser"] is None


def test_sections_follow_the_grid_and_pair_emotions_with_the_truth_only_when_there_is_one():
    titles = sections(EMOTIONS, with_truth=True)
    assert [labels for _, labels, _ in titles] == [EMOTIONS, ["angry@0.25", "angry@0.5", "angry@0.75",
                                                              "sad@0.25", "sad@0.5", "sad@0.75"],
                                                   ["angry+sad", "sad+angry"]]
    assert [paired for _, _, paired in titles] == [True, False, False]
    assert sections(EMOTIONS, with_truth=False)[0][0] == "Emotions"
    assert file_stem("angry@0.25") == "angry-at-0.25" and file_stem("a+b") == "a-and-b"


@pytest.mark.slow
def test_the_page_renders_offline_in_chromium_with_every_picture_and_player(eval_folder):
    from tests.test_app import BROWSER_FLAGS, CHROMIUM, browser_driver

    with browser_driver().sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=[*BROWSER_FLAGS, "--disable-web-security"])
        page = browser.new_page()
        outside = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith("file://") else None)
        page.goto((eval_folder / "index.html").as_uri())
        page.wait_for_function("[...document.images].every(i => i.complete)")
        shown = page.evaluate("[...document.images].map(i => i.naturalWidth)")
        assert len(shown) >= 2 * 12 and min(shown) > 100  # every mel picture decoded
        durations = page.evaluate("""Promise.all([...document.querySelectorAll('audio')].map(a =>
            new Promise(done => { a.onloadedmetadata = () => done(a.duration); a.onerror = () => done(-1);
                                  a.preload = 'metadata'; a.load(); })))""")
        assert len(durations) == len(shown) - 2 * 3 and min(durations) > 0.05  # every player plays
        assert outside == []
        browser.close()
