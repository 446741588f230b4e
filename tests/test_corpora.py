"""Corpus readers on tiny fake trees of every supported layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emomix_cli.corpora import READERS, Record, read_corpus
from emomix_cli.corpora.base import decode_text, hash_split, make_unique, safe_id
from emomix_cli.corpora.esd import standard_split
from emomix_cli.corpora.iemocap import speaker_of
from emomix_cli.errors import EmomixError


def write_wav(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.zeros(64, dtype=np.float32), 22050, subtype="PCM_16")
    return path


def write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def by_id(records: list[Record]) -> dict[str, Record]:
    return {r.id: r for r in records}


def one_line(message: str) -> bool:
    return "\n" not in message and len(message) > 0


# ---------------------------------------------------------------- ESD
def make_esd_speaker(root: Path, speaker: str, utterances: dict, encoding="utf-8", flat=False):
    """utterances: {idx: (Emotion folder, split folder, text)}."""
    lines = []
    for idx, (emotion, split, text) in utterances.items():
        utt = f"{speaker}_{idx:06d}"
        folder = root / speaker / emotion if flat else root / speaker / emotion / split
        write_wav(folder / f"{utt}.wav")
        lines.append(f"{utt}\t{text}\t{emotion}")
    write_text(root / speaker / f"{speaker}.txt", "\n".join(lines) + "\n", encoding)


def test_esd_official_layout_takes_emotion_and_split_from_folders(tmp_path):
    make_esd_speaker(
        tmp_path,
        "0011",
        {
            351: ("Angry", "train", "Anger line."),
            352: ("Angry", "evaluation", "Evaluation line."),
            701: ("Happy", "test", "Happy line."),
            1401: ("Surprise", "train", "Surprise line."),
        },
        encoding="utf-16",
    )
    result = read_corpus("esd", tmp_path)
    records = by_id(result.records)
    assert sorted(records) == ["0011_000351", "0011_000352", "0011_000701", "0011_001401"]
    assert records["0011_000351"].emotion == "angry"
    assert records["0011_000351"].split == "train"
    assert records["0011_000352"].split == "val"
    assert records["0011_000701"].split == "test"
    assert records["0011_001401"].emotion == "surprise"
    assert records["0011_000701"].text == "Happy line."
    assert {r.speaker for r in result.records} == {"0011"}
    assert {r.language for r in result.records} == {"en"}
    assert result.warnings == []


def test_standard_split_cuts_every_350_block_into_20_val_30_test_300_train():
    assert [standard_split(i) for i in (1, 20, 21, 50, 51, 350)] == [
        "val", "val", "test", "test", "train", "train"
    ]  # fmt: skip
    assert [standard_split(i) for i in (351, 370, 371, 400, 401, 1750)] == [
        "val", "val", "test", "test", "train", "train"
    ]  # fmt: skip


def test_esd_flat_layout_uses_the_standard_split(tmp_path):
    utterances = {
        1: ("Neutral", None, "a"),
        21: ("Neutral", None, "b"),
        51: ("Neutral", None, "c"),
        351: ("Angry", None, "d"),
        371: ("Angry", None, "e"),
        401: ("Angry", None, "f"),
    }
    make_esd_speaker(tmp_path, "0011", utterances, flat=True)
    splits = {r.id: r.split for r in read_corpus("esd", tmp_path).records}
    assert splits == {
        "0011_000001": "val",
        "0011_000021": "test",
        "0011_000051": "train",
        "0011_000351": "val",
        "0011_000371": "test",
        "0011_000401": "train",
    }


@pytest.mark.parametrize(
    ("speaker", "text", "encoding"),
    [
        ("0011", "Café, naïve façade.", "utf-8"),
        ("0011", "Café, naïve façade.", "utf-8-sig"),
        ("0011", "Café, naïve façade.", "utf-16"),
        ("0011", "Café, naïve façade.", "utf-16-le"),
        ("0011", "Café, naïve façade.", "latin-1"),
        ("0001", "打远一看，它们的确很是美丽。", "gb2312"),
        ("0001", "打远一看，它们的确很是美丽。", "utf-16"),
    ],
)
def test_esd_transcript_is_decoded_whatever_its_encoding(tmp_path, speaker, text, encoding):
    make_esd_speaker(tmp_path, speaker, {1: ("Neutral", "evaluation", text)}, encoding=encoding)
    (record,) = read_corpus("esd", tmp_path).records
    assert record.text == text


def test_decode_text_prefers_gb2312_to_latin1_for_chinese_bytes():
    text, encoding = decode_text("中立".encode("gb2312"))
    assert (text, encoding) == ("中立", "gb2312")


def test_esd_broken_line_and_wav_without_line_are_warnings(tmp_path):
    make_esd_speaker(tmp_path, "0011", {351: ("Angry", "train", "Fine line.")})
    write_wav(tmp_path / "0011" / "Angry" / "train" / "0011_000352.wav")  # no transcript line
    transcript = tmp_path / "0011" / "0011.txt"
    transcript.write_text(transcript.read_text() + "this line is broken\n")
    result = read_corpus("esd", tmp_path)
    assert [r.id for r in result.records] == ["0011_000351"]
    assert len(result.warnings) == 2
    assert any("line 2" in w and "broken" in w for w in result.warnings)
    assert any("0011_000352" in w for w in result.warnings)


def test_esd_space_separated_line_still_reads_and_drops_the_emotion_column(tmp_path):
    make_esd_speaker(tmp_path, "0011", {1: ("Neutral", "evaluation", "x")})
    (tmp_path / "0011" / "0011.txt").write_text("0011_000001 The nine the eggs, I keep. Neutral\n")
    (record,) = read_corpus("esd", tmp_path).records
    assert record.text == "The nine the eggs, I keep."


def two_language_esd(root: Path) -> None:
    make_esd_speaker(root, "0001", {1: ("Neutral", "evaluation", "你好。")}, encoding="gb2312")
    make_esd_speaker(root, "0011", {1: ("Neutral", "evaluation", "Hello.")})
    make_esd_speaker(root, "0012", {351: ("Angry", "train", "Go away.")})


def test_esd_language_filter_keeps_mandarin_speakers_0001_to_0010(tmp_path):
    two_language_esd(tmp_path)
    zh = read_corpus("esd", tmp_path, language="zh").records
    en = read_corpus("esd", tmp_path, language="en").records
    assert [(r.speaker, r.language) for r in zh] == [("0001", "zh")]
    assert sorted({r.speaker for r in en}) == ["0011", "0012"]
    assert {r.language for r in en} == {"en"}


def test_esd_speaker_filter_accepts_unpadded_numbers_and_rejects_unknown(tmp_path):
    two_language_esd(tmp_path)
    records = read_corpus("esd", tmp_path, speakers=["11", "0012"]).records
    assert sorted({r.speaker for r in records}) == ["0011", "0012"]
    with pytest.raises(EmomixError) as error:
        read_corpus("esd", tmp_path, speakers=["0099"])
    assert "0099" in str(error.value) and "0011" in str(error.value)


def test_esd_bad_language_is_an_error(tmp_path):
    two_language_esd(tmp_path)
    with pytest.raises(EmomixError, match="en, zh"):
        read_corpus("esd", tmp_path, language="fr")


def test_esd_wrong_layout_says_what_was_expected_where(tmp_path):
    write_wav(tmp_path / "0011" / "0011_000001.wav")  # no <Emotion> folder
    with pytest.raises(EmomixError) as error:
        read_corpus("esd", tmp_path)
    message = str(error.value)
    assert one_line(message)
    assert (
        str(tmp_path) in message and "<speaker>/<Emotion>" in message and "<speaker>.txt" in message
    )


def test_esd_missing_root_is_an_error(tmp_path):
    with pytest.raises(EmomixError, match="does not exist"):
        read_corpus("esd", tmp_path / "nowhere")


def test_esd_inside_a_wrapper_folder_is_found(tmp_path):
    make_esd_speaker(tmp_path / "Emotion Speech Dataset", "0011", {1: ("Sad", "test", "Hi.")})
    (record,) = read_corpus("esd", tmp_path).records
    assert (record.emotion, record.split) == ("sad", "test")


def test_esd_speaker_without_transcript_is_skipped_with_a_warning(tmp_path):
    make_esd_speaker(tmp_path, "0011", {1: ("Sad", "test", "Hi.")})
    write_wav(tmp_path / "0012" / "Sad" / "test" / "0012_000001.wav")
    result = read_corpus("esd", tmp_path)
    assert {r.speaker for r in result.records} == {"0011"}
    assert any("0012" in w and "transcript" in w for w in result.warnings)


# ---------------------------------------------------------------- IEMOCAP
IEMOCAP_SESSION1 = {
    # utterance: (label, text)
    "Ses01F_impro01_F000": ("neu", "Excuse me."),
    "Ses01F_impro01_M001": ("exc", "Do you have your forms?"),
    "Ses01F_impro01_F002": ("hap", "Yeah."),
    "Ses01F_impro01_M003": ("fru", "Let me see them."),
    "Ses01F_impro01_F004": ("ang", "Is there a problem?"),
    "Ses01F_script01_1_M000": ("sad", "What's he going to say?"),
}


def make_iemocap_session(root: Path, number: int, utterances: dict, broken_line: bool = False):
    session = root / f"Session{number}"
    dialogs: dict[str, list[str]] = {}
    for utt in utterances:
        dialogs.setdefault(utt.rsplit("_", 1)[0], []).append(utt)
    for dialog, utts in dialogs.items():
        labels = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
        texts = []
        for i, utt in enumerate(utts):
            label, text = utterances[utt]
            start, end = 1.0 + 3 * i, 3.0 + 3 * i
            labels += [f"[{start:.4f} - {end:.4f}]\t{utt}\t{label}\t[2.5000, 2.5000, 2.5000]"]
            labels += ["C-E1:\tNeutral;\t()", ""]
            texts.append(f"{utt} [{start:07.4f}-{end:07.4f}]: {text}")
            write_wav(session / "sentences" / "wav" / dialog / f"{utt}.wav")
        if broken_line:
            labels.append("[12.0 - oops")
        write_text(session / "dialog" / "EmoEvaluation" / f"{dialog}.txt", "\n".join(labels))
        write_text(session / "dialog" / "transcriptions" / f"{dialog}.txt", "\n".join(texts))


@pytest.fixture
def iemocap(tmp_path):
    make_iemocap_session(tmp_path, 1, IEMOCAP_SESSION1, broken_line=True)
    make_iemocap_session(tmp_path, 5, {"Ses05M_impro02_F010": ("sad", "I'll miss you.")})
    return tmp_path


def test_iemocap_merges_exc_into_happy_and_drops_other_labels(iemocap):
    records = by_id(read_corpus("iemocap", iemocap).records)
    assert "Ses01F_impro01_M003" not in records  # fru
    assert len(records) == 6
    assert records["Ses01F_impro01_M001"].emotion == "happy"
    assert records["Ses01F_impro01_F002"].emotion == "happy"
    assert records["Ses01F_impro01_F000"].emotion == "neutral"
    assert records["Ses01F_impro01_F004"].emotion == "angry"
    assert records["Ses01F_script01_1_M000"].emotion == "sad"
    assert records["Ses01F_impro01_F000"].text == "Excuse me."


def test_iemocap_keep_exc_keeps_excited_apart(iemocap):
    records = by_id(read_corpus("iemocap", iemocap, keep_exc=True).records)
    assert records["Ses01F_impro01_M001"].emotion == "excited"
    assert records["Ses01F_impro01_F002"].emotion == "happy"


def test_iemocap_improvised_only_drops_scripted_dialogs(iemocap):
    records = read_corpus("iemocap", iemocap, improvised_only=True).records
    assert all("_impro" in r.id for r in records)
    assert len(records) == 5


def test_iemocap_speaker_is_session_plus_gender_of_the_turn(iemocap):
    assert speaker_of("Ses01F_impro01_M003") == "Ses01M"
    assert speaker_of("Ses03M_script02_2_F014") == "Ses03F"
    records = by_id(read_corpus("iemocap", iemocap).records)
    assert records["Ses01F_impro01_M001"].speaker == "Ses01M"
    assert records["Ses01F_impro01_F000"].speaker == "Ses01F"
    assert records["Ses05M_impro02_F010"].speaker == "Ses05F"


def test_iemocap_splits_by_session(iemocap):
    records = by_id(read_corpus("iemocap", iemocap).records)
    assert records["Ses05M_impro02_F010"].split == "test"
    assert {r.split for r in records.values() if r.id.startswith("Ses01")} <= {"train", "val"}
    moved = by_id(read_corpus("iemocap", iemocap, test_sessions=[1]).records)
    assert {r.split for r in moved.values() if r.id.startswith("Ses01")} == {"test"}
    assert moved["Ses05M_impro02_F010"].split in {"train", "val"}


def test_iemocap_broken_label_line_and_missing_transcript_are_warnings(iemocap):
    transcript = iemocap / "Session1" / "dialog" / "transcriptions" / "Ses01F_impro01.txt"
    kept = [line for line in transcript.read_text().splitlines() if "F004" not in line]
    transcript.write_text("\n".join(kept))
    result = read_corpus("iemocap", iemocap)
    assert "Ses01F_impro01_F004" not in by_id(result.records)
    assert any("F004" in w and "transcriptions" in w for w in result.warnings)
    assert any("oops" in w for w in result.warnings)


def test_iemocap_wrong_layout_says_what_was_expected_where(tmp_path):
    write_wav(tmp_path / "wavs" / "a.wav")
    with pytest.raises(EmomixError) as error:
        read_corpus("iemocap", tmp_path)
    assert one_line(str(error.value)) and "Session1..5/sentences/wav" in str(error.value)


# ---------------------------------------------------------------- RAVDESS
def test_ravdess_reads_speech_with_statement_text_intensity_and_actor_split(tmp_path):
    write_wav(tmp_path / "Actor_01" / "03-01-05-02-01-01-01.wav")  # angry, strong, kids
    write_wav(tmp_path / "Actor_01" / "03-02-03-01-02-01-01.wav")  # song: skipped
    write_wav(tmp_path / "Actor_01" / "notes.wav")  # not a RAVDESS name: warning
    write_wav(tmp_path / "Actor_22" / "03-01-02-01-02-02-22.wav")  # calm, dogs
    write_wav(tmp_path / "Actor_23" / "03-01-01-01-02-01-23.wav")  # neutral
    result = read_corpus("ravdess", tmp_path)
    records = by_id(result.records)
    assert sorted(records) == [
        "03-01-01-01-02-01-23",
        "03-01-02-01-02-02-22",
        "03-01-05-02-01-01-01",
    ]
    angry = records["03-01-05-02-01-01-01"]
    assert (angry.emotion, angry.text, angry.speaker, angry.split) == (
        "angry", "Kids are talking by the door.", "Actor_01", "train"
    )  # fmt: skip
    assert angry.extra["intensity"] == "strong"
    calm = records["03-01-02-01-02-02-22"]
    assert (calm.emotion, calm.text, calm.split) == ("calm", "Dogs are sitting by the door.", "val")
    assert calm.extra["intensity"] == "normal"
    assert records["03-01-01-01-02-01-23"].split == "test"
    assert len(result.warnings) == 1 and "notes.wav" in result.warnings[0]


def test_ravdess_wrong_layout_says_what_was_expected_where(tmp_path):
    write_wav(tmp_path / "03-01-05-02-01-01-01.wav")
    with pytest.raises(EmomixError) as error:
        read_corpus("ravdess", tmp_path)
    assert one_line(str(error.value)) and "Actor_XX/MM-VV-EE-II-SS-RR-AA.wav" in str(error.value)


# ---------------------------------------------------------------- CREMA-D
def test_cremad_parses_names_into_text_emotion_intensity_and_speaker_split(tmp_path):
    audio = tmp_path / "AudioWAV"
    write_wav(audio / "1001_DFA_ANG_XX.wav")
    write_wav(audio / "1009_IEO_HAP_HI.wav")
    write_wav(audio / "1010_TSI_SAD_LO.wav")
    write_wav(audio / "1002_XYZ_ANG_XX.wav")  # unknown sentence code
    (audio / "1003_IOM_NEU_MD.wav").write_bytes(b"")  # CREMA-D ships a few empty files
    result = read_corpus("cremad", tmp_path)
    records = by_id(result.records)
    assert sorted(records) == ["1001_DFA_ANG_XX", "1009_IEO_HAP_HI", "1010_TSI_SAD_LO"]
    first = records["1001_DFA_ANG_XX"]
    assert (first.text, first.emotion, first.speaker, first.split) == (
        "Don't forget a jacket.", "angry", "1001", "train"
    )  # fmt: skip
    assert first.extra["intensity"] == "unspecified"
    assert records["1009_IEO_HAP_HI"].split == "val"
    assert records["1009_IEO_HAP_HI"].extra["intensity"] == "high"
    assert records["1010_TSI_SAD_LO"].split == "test"
    assert records["1010_TSI_SAD_LO"].text == "The surface is slick."
    assert len(result.warnings) == 2
    assert any("XYZ" in w for w in result.warnings) and any("empty" in w for w in result.warnings)
    assert [r.id for r in read_corpus("cremad", audio).records] == sorted(records)


def test_cremad_wrong_layout_says_what_was_expected_where(tmp_path):
    write_wav(tmp_path / "AudioWAV" / "hello.wav")
    with pytest.raises(EmomixError) as error:
        read_corpus("cremad", tmp_path)
    assert one_line(str(error.value)) and "AudioWAV/<actor>_<sentence>" in str(error.value)


# ---------------------------------------------------------------- manifest
def test_manifest_csv_resolves_relative_wavs_and_normalises_emotions(tmp_path):
    write_wav(tmp_path / "wavs" / "a 1.wav")
    write_wav(tmp_path / "wavs" / "b.wav")
    absolute = write_wav(tmp_path / "elsewhere" / "c.wav")
    write_text(
        tmp_path / "data.csv",
        "wav,text,speaker,emotion,split,language\n"
        'wavs/a 1.wav,"Hello, world.",spk1,Angry,train,en\n'
        "wavs/b.wav,Bye.,spk1,SURPRISED,dev,\n"
        f"{absolute},Third.,spk2,neutral,test,en\n",
    )
    records = read_corpus("manifest", tmp_path / "data.csv").records
    assert [r.id for r in records] == ["a_1", "b", "c"]
    assert records[0].wav == tmp_path / "wavs" / "a 1.wav"
    assert records[0].text == "Hello, world."
    assert [r.emotion for r in records] == ["angry", "surprise", "neutral"]
    assert [r.split for r in records] == ["train", "val", "test"]
    assert records[1].language == "en"


def test_manifest_jsonl_folder_with_hash_split_and_extra_columns(tmp_path):
    rows = [
        {
            "wav": f"wavs/{i}.wav",
            "text": f"Line {i}.",
            "speaker": "s",
            "emotion": "Happy",
            "style": i,
        }
        for i in range(20)
    ]
    for row in rows:
        write_wav(tmp_path / row["wav"])
    lines = [json.dumps(r) for r in rows] + ["{not json"]
    write_text(tmp_path / "manifest.jsonl", "\n".join(lines) + "\n")
    first = read_corpus("manifest", tmp_path)
    second = read_corpus("manifest", tmp_path)
    assert len(first.records) == 20
    assert [r.split for r in first.records] == [r.split for r in second.records]
    assert [r.split for r in first.records] == [hash_split(r["wav"]) for r in rows]
    assert first.records[3].extra == {"style": 3}
    assert {r.emotion for r in first.records} == {"happy"}
    assert len(first.warnings) == 1 and "line 21" in first.warnings[0]


def test_hash_split_is_about_90_5_5():
    splits = [hash_split(f"utt{i}") for i in range(4000)]
    shares = {s: splits.count(s) / len(splits) for s in ("train", "val", "test")}
    assert 0.87 < shares["train"] < 0.93
    assert 0.03 < shares["val"] < 0.07 and 0.03 < shares["test"] < 0.07


def test_manifest_missing_column_names_it(tmp_path):
    write_text(tmp_path / "m.csv", "wav,text,emotion\nx.wav,Hi.,angry\n")
    with pytest.raises(EmomixError, match="'speaker' column") as error:
        read_corpus("manifest", tmp_path / "m.csv")
    assert one_line(str(error.value))
    write_text(tmp_path / "m.jsonl", json.dumps({"wav": "x.wav", "text": "Hi.", "speaker": "s"}))
    with pytest.raises(EmomixError, match="'emotion'"):
        read_corpus("manifest", tmp_path / "m.jsonl")


def test_manifest_broken_rows_are_warnings(tmp_path):
    write_wav(tmp_path / "ok.wav")
    write_wav(tmp_path / "empty_text.wav")
    write_text(
        tmp_path / "manifest.csv",
        "wav,text,speaker,emotion,split\n"
        "ok.wav,Fine.,s,sad,train\n"
        "missing.wav,Gone.,s,sad,train\n"
        "empty_text.wav,,s,sad,train\n"
        "ok.wav,Bad split.,s,sad,holdout\n"
        "ok.wav,too,many,fields,train,x,y\n",
    )
    result = read_corpus("manifest", tmp_path)
    assert [r.text for r in result.records] == ["Fine."]
    assert len(result.warnings) == 4
    assert any("missing.wav" in w and "not found" in w for w in result.warnings)
    assert any("text" in w and "line 4" in w for w in result.warnings)
    assert any("holdout" in w for w in result.warnings)


def test_manifest_duplicate_wav_stems_get_unique_ids(tmp_path):
    write_wav(tmp_path / "a" / "001.wav")
    write_wav(tmp_path / "b" / "001.wav")
    write_text(
        tmp_path / "manifest.csv",
        "wav,text,speaker,emotion\na/001.wav,One.,a,sad\nb/001.wav,Two.,b,sad\n",
    )
    assert [r.id for r in read_corpus("manifest", tmp_path).records] == ["001", "001_2"]


def test_manifest_folder_without_manifest_is_an_error(tmp_path):
    with pytest.raises(EmomixError, match=r"manifest\.jsonl or manifest\.csv"):
        read_corpus("manifest", tmp_path)


# ---------------------------------------------------------------- shared
def test_read_corpus_unknown_name_lists_known_readers(tmp_path):
    with pytest.raises(EmomixError) as error:
        read_corpus("librispeech", tmp_path)
    assert all(name in str(error.value) for name in READERS)
    assert set(READERS) == {"esd", "iemocap", "ravdess", "cremad", "manifest"}


def test_read_corpus_rejects_unknown_options_and_ignores_none(tmp_path):
    make_esd_speaker(tmp_path, "0011", {1: ("Sad", "test", "Hi.")})
    assert len(read_corpus("esd", tmp_path, speakers=None, language=None).records) == 1
    with pytest.raises(EmomixError, match="keep_exc"):
        read_corpus("esd", tmp_path, keep_exc=True)


def test_ids_are_filesystem_safe_and_unique():
    assert safe_id("my file (1).wav") == "my_file_1_.wav"
    assert safe_id("../..") == "utt"
    assert safe_id("说话人_01") == "01"
    assert make_unique(["a", "a", "a_2", "b"]) == ["a", "a_3", "a_2", "b"]
