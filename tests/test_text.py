import unicodedata
from pathlib import Path

import pytest

from emomix_cli.errors import EmomixError
from emomix_cli.text import (
    BASE_SYMBOLS,
    SymbolTable,
    check_speakable,
    default_symbol_table,
    foreign_characters,
    intersperse,
    normalize_text,
    phonemize,
    text_to_ids,
)


def test_symbol_table_round_trips_through_dict():
    table = default_symbol_table()
    again = SymbolTable.from_dict(table.to_dict())
    assert again == table
    assert again.encode("həlˈoʊ, wˈɜːld!") == table.encode("həlˈoʊ, wˈɜːld!")
    assert set(table.to_dict()) == {"symbols", "add_blank"}


def test_pad_is_zero_and_blank_is_the_last_id_outside_real_symbols():
    table = default_symbol_table()
    assert table.pad_id == 0 and table.symbols[0] == "<pad>"
    assert table.blank_id == len(table) - 1 == len(BASE_SYMBOLS) + 1
    ids = table.encode("abc ˈə")
    assert all(0 < i < table.blank_id for i in ids[1::2])
    no_blank = default_symbol_table(add_blank=False)
    assert len(no_blank) == len(table) - 1 and no_blank.blank_id == -1


def test_symbols_are_unique_single_nfd_stable_characters():
    assert len(set(BASE_SYMBOLS)) == len(BASE_SYMBOLS)
    for symbol in BASE_SYMBOLS:
        assert len(symbol) == 1 and unicodedata.normalize("NFD", symbol) == symbol


def test_intersperse_matches_grad_tts_layout():
    assert intersperse([5, 6, 7], 9) == [9, 5, 9, 6, 9, 7, 9]
    assert intersperse([], 9) == [9]
    table = default_symbol_table()
    ids = table.encode("ab")
    b = table.blank_id
    assert ids == [b, table.symbols.index("a"), b, table.symbols.index("b"), b]


def test_encode_drops_and_counts_unknown_symbols_and_splits_combining_marks():
    table = default_symbol_table(add_blank=False)
    ids = table.encode("a§b")
    assert table.decode(ids) == "ab"
    assert table.dropped["§"] == 1
    # a precomposed nasal vowel becomes base + combining tilde, both known
    assert table.decode(table.encode("ã")) == "a\u0303"
    assert table.unknown("i̪ n̩") == []


def test_from_dict_rejects_a_table_without_pad():
    with pytest.raises(EmomixError):
        SymbolTable.from_dict({"symbols": ["a", "b"], "add_blank": True})


def test_english_abbreviations_and_symbols_are_expanded():
    assert normalize_text("Dr. Smith met Mr. and Mrs. Jones.") == (
        "doctor Smith met mister and missus Jones."
    )
    assert normalize_text("St. Paul lives on Main St.") == "Saint Paul lives on Main Street."
    assert normalize_text("50% & more") == "50 percent and more"
    assert normalize_text("It costs $3.50 now") == "It costs 3 dollars 50 cents now"
    assert normalize_text("$5 etc. Then") == "5 dollars et cetera. Then"
    assert normalize_text("e.g. the 1990s") == "for example the 19 nineties"
    assert normalize_text("pi is 3.14") == "pi is 3 point 1 4"
    assert normalize_text("Hello (there) -- friend") == "Hello, there — friend"


def test_english_phonemes_keep_stress_punctuation_and_expand_numbers():
    first, second = phonemize(["Hello, world! I have 42 apples.", "Is Dr. Who here?"])
    assert "ˈ" in first
    assert "," in first and "!" in first and first.endswith(".")
    assert "fˈɔːɹɾi" in first and "tˈuː" in first  # 42 read as "forty two"
    assert "dˈɑːktɚ" in second and second.endswith("?") and "." not in second


def test_batch_with_punctuation_only_lines_stays_aligned():
    out = phonemize(["...", "one", "!!!", "two"])
    assert out[0] == "..." and out[2] == "!!!"
    assert out[1].replace("ˌ", "ˈ") == "wˈʌn" and "tˈuː" in out[3]


def test_a_mark_inside_a_token_does_not_shift_the_batch():
    out = phonemize(["see www.example.com now", "two"])
    assert len(out) == 2 and "tˈuː" in out[1] and "nˈaʊ" in out[0]


def test_mandarin_gives_known_symbols_with_tones():
    sentences = ["你好，世界！", "今天天气很好吗？", "我有42个苹果。", "知道吃饭睡觉是日常生活。"]
    table = default_symbol_table()
    phonemes = phonemize(sentences, "zh")
    assert all(phonemes)
    assert sum(len(table.unknown(p)) for p in phonemes) == 0
    assert any(d in phonemes[0] for d in "12345")
    assert phonemes[0].rstrip().endswith("!") and "," in phonemes[0]
    # espeak's "s." (retroflex) is rewritten so "." only means punctuation
    assert "ʂ" in phonemes[3] and "." not in phonemes[3][:-1]


def test_empty_text_is_a_user_error():
    table = default_symbol_table()
    with pytest.raises(EmomixError, match="text is empty"):
        text_to_ids("   ", table)
    with pytest.raises(EmomixError, match="text is empty"):
        phonemize(["fine", ""])


def test_unknown_language_lists_known_ones():
    with pytest.raises(EmomixError, match="zh"):
        phonemize(["hola"], "es")


def test_text_to_ids_gives_interspersed_ids():
    table = default_symbol_table()
    ids = text_to_ids("Hi.", table)
    assert ids[0] == ids[-1] == table.blank_id and len(ids) % 2 == 1
    assert table.decode(ids) == "hˈaɪ."


def test_a_long_espeak_data_path_is_copied_to_a_short_one_once(tmp_path):
    from emomix_cli.text import ESPEAK_PATH_LIMIT, espeak_data_path

    real = tmp_path / ("x" * (ESPEAK_PATH_LIMIT + 10)) / "espeak-ng-data"
    real.mkdir(parents=True)
    (real / "phontab").write_bytes(b"data")
    short = espeak_data_path(str(real))
    assert len(short) <= ESPEAK_PATH_LIMIT
    assert (Path(short) / "phontab").read_bytes() == b"data"
    assert espeak_data_path(str(real)) == short  # the same copy again, not a new one
    (real / "phontab").write_bytes(b"reinstalled")
    assert (Path(espeak_data_path(str(real))) / "phontab").read_bytes() == b"reinstalled"
    assert espeak_data_path("/usr/share") == "/usr/share"  # a short path stays as it is


# ---------------------------------------------------------------- what a voice can read
@pytest.mark.parametrize("text", ["", "   ", "...", "!?", "— , ;", None])
def test_text_with_nothing_to_speak_is_refused(text):
    with pytest.raises(EmomixError, match="nothing to speak"):
        check_speakable(text, "en")


def test_letters_outside_the_voice_are_named():
    with pytest.raises(EmomixError, match=r"English voice cannot read '東' \(U\+6771\), '京' \(U\+4EAC\)"):
        check_speakable("東京", "en")
    with pytest.raises(EmomixError, match="--allow-foreign-text"):
        check_speakable("Hello, 東京 is big.", "en")  # a mixed-script text too, by default
    assert foreign_characters("Привет мир, hello", "en") == ["П", "р", "и", "в", "е", "т", "м"]
    assert foreign_characters("١٢٣ and 123", "en") == ["١", "٢", "٣"]  # only ASCII digits are read
    with pytest.raises(EmomixError, match=r"and 3 more"):
        check_speakable("αβγδεζηθικλ", "en")  # the first eight are named, the rest counted


@pytest.mark.parametrize("text", [
    "Café naïve, señor.", "Straße", "e.g. Mr. Smith paid $5.20 at 10:30, i.e. 50% more!",
    "It's 20°C in the 1990s — isn't it?", "Chapter Ⅻ", "No. 7 & #3",
])
def test_latin_text_numbers_abbreviations_and_punctuation_still_speak(text):
    check_speakable(text, "en")
    assert foreign_characters(text, "en") == []


def test_mandarin_reads_chinese_characters_and_digits_but_not_latin():
    check_speakable("你好，世界。我有3本书。", "zh")
    assert foreign_characters("你好 hello", "zh") == ["h", "e", "l", "o"]
    with pytest.raises(EmomixError, match="Mandarin voice cannot read 'h'.*Chinese characters"):
        check_speakable("你好 hello", "zh")


def test_foreign_text_is_allowed_only_when_asked():
    check_speakable("Hello, 東京.", "en", allow_foreign=True)
    with pytest.raises(EmomixError, match="nothing to speak"):
        check_speakable("...", "en", allow_foreign=True)  # nothing to speak is never allowed
