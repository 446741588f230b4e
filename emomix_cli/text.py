"""Text frontend: English/Mandarin text -> IPA phonemes (espeak-ng) -> symbol ids.

Phonemes come from phonemizer's espeak backend running on the espeak-ng library shipped by
``espeakng-loader`` (no system install). Stress marks and punctuation are kept. Tokens are
single unicode characters after NFD decomposition (as in Grad-TTS-like IPA models), so a
multi-character phone such as ``tʃ`` becomes two tokens and a diacritic (``i̪``, ``n̩``) is its
own token. The symbol inventory is a FIXED list, saved with features and checkpoints; the
blank used for interspersing (Grad-TTS ``add_blank``) is the last id, outside the real symbols.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import os
import re
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .errors import EmomixError

PAD = "<pad>"
BLANK = "<blank>"

# ---------------------------------------------------------------- the fixed inventory
# Never reorder or remove entries: ids are stored in every feature store and checkpoint
# (which also store the table itself, so a future table change cannot break old files).
_PUNCTUATION = " !\"',-.:;?"
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_IPA_LETTERS = (
    "ɑɐɒæɓʙβɔɕɗɖðʤəɘɚɛɜɝɞɟʄɡɠɢʛɦɧħɥʜɨɪʝɭɬɫɮʟɱɯɰŋɳɲɴøɵɸθœɶʘɹɺɾɻʀʁɽʂʃʈʧʉʊʋⱱʌɣɤʍχʎʏʑʐʒʔʡʕʢ"
    "ǀǁǂǃᵻᵿ"
)
_SUPRASEGMENTALS = "ˈˌːˑ" + "ʰʱʲʷˠˤ˞ʼ" + "↓↑→↗↘"
_TONES = "12345" + "˥˦˧˨˩"
_COMBINING = (
    "\u0329\u032a\u0303\u0325\u032f\u0361\u0306\u0308\u031a\u031d\u031e\u031f\u0320"
    "\u0324\u0327\u0330\u0334\u0339\u031c\u033a\u033b\u033c\u030a\u0300\u0301\u0302\u0304\u030c"
)
BASE_SYMBOLS: tuple[str, ...] = tuple(
    _PUNCTUATION + _LETTERS + _IPA_LETTERS + _SUPRASEGMENTALS + _TONES + _COMBINING
)

LANGUAGES = {"en": "en-us", "en-us": "en-us", "en-gb": "en-gb", "zh": "cmn", "cmn": "cmn"}


@dataclass
class SymbolTable:
    """Symbol inventory: ``symbols[0]`` is the pad; with ``add_blank`` the interspersed blank is
    ``symbols[-1]`` (emomix, Grad-TTS) or, with ``blank_is_pad``, the pad itself (Matcha-TTS).

    ``len(table)`` is the embedding size (``n_vocab``, pad and blank included).
    """

    symbols: list[str]
    add_blank: bool = True
    dropped: collections.Counter = field(default_factory=collections.Counter, repr=False)
    blank_is_pad: bool = False

    def __post_init__(self) -> None:
        symbols = list(self.symbols)
        if not symbols or symbols[0] != PAD:
            raise EmomixError(f"symbol table must start with the pad symbol {PAD!r}; rebuild it")
        if self.add_blank and not self.blank_is_pad and symbols[-1] != BLANK:
            symbols.append(BLANK)
        if not self.add_blank and BLANK in symbols:
            raise EmomixError("symbol table holds a blank but add_blank is false; fix the table")
        if len(set(symbols)) != len(symbols):
            raise EmomixError("symbol table has duplicate symbols; rebuild it")
        self.symbols = symbols
        last = len(symbols) - 1 if self.add_blank and not self.blank_is_pad else len(symbols)
        self._ids = {s: i for i, s in enumerate(symbols[1:last], start=1)}

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def blank_id(self) -> int:
        """Id of the interspersed blank (the last id, or 0 with ``blank_is_pad``); -1 when
        ``add_blank`` is off."""
        if not self.add_blank:
            return -1
        return 0 if self.blank_is_pad else len(self.symbols) - 1

    def __len__(self) -> int:
        return len(self.symbols)

    def unknown(self, phonemes: str) -> list[str]:
        """Characters of ``phonemes`` that are not in the table (would be dropped)."""
        return [c for c in unicodedata.normalize("NFD", phonemes) if c not in self._ids]

    def encode(self, phonemes: str) -> list[int]:
        """Phoneme string -> ids, one per NFD character; unknown characters are dropped and
        counted in ``self.dropped``; with ``add_blank`` the result is ``[b, s1, b, ..., sn, b]``."""
        ids = []
        for char in unicodedata.normalize("NFD", phonemes):
            index = self._ids.get(char)
            if index is None:
                self.dropped[char] += 1
            else:
                ids.append(index)
        return intersperse(ids, self.blank_id) if self.add_blank else ids

    def decode(self, ids: list[int]) -> str:
        """Ids -> phoneme string, skipping pad and blank."""
        skip = {self.pad_id, self.blank_id}
        return "".join(self.symbols[i] for i in ids if i not in skip)

    def to_dict(self) -> dict:
        data = {"symbols": list(self.symbols), "add_blank": bool(self.add_blank)}
        if self.blank_is_pad:
            data["blank_is_pad"] = True
        return data

    @classmethod
    def from_dict(cls, data: dict) -> SymbolTable:
        try:
            return cls(symbols=list(data["symbols"]), add_blank=bool(data["add_blank"]),
                       blank_is_pad=bool(data.get("blank_is_pad", False)))
        except (KeyError, TypeError):
            raise EmomixError(
                "stored symbol table is malformed (needs 'symbols' and 'add_blank'); re-run prep"
            ) from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SymbolTable):
            return NotImplemented
        return (self.symbols, self.add_blank, self.blank_is_pad) == \
            (other.symbols, other.add_blank, other.blank_is_pad)


def intersperse(sequence: list[int], item: int) -> list[int]:
    """Grad-TTS ``intersperse``: ``[item, s1, item, s2, ..., sn, item]``."""
    result = [item] * (len(sequence) * 2 + 1)
    result[1::2] = sequence
    return result


def default_symbol_table(add_blank: bool = True) -> SymbolTable:
    return SymbolTable(symbols=[PAD, *BASE_SYMBOLS], add_blank=add_blank)


# Matcha-TTS's vocabulary (its text/symbols.py): pad, punctuation, Latin letters and IPA, 178
# ids, blanks interspersed with the pad's id 0. Its IPA string holds "'" twice; its lookup
# returns the second id, so the first id keeps a placeholder that no text produces.
_MATCHA_PUNCTUATION = ';:,.!?¡¿—…"«»“” '
_MATCHA_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_MATCHA_IPA = (
    "ɑɐɒæɓʙβɔɕçɗɖðʤəɘɚɛɜɝɞɟʄɡɠɢʛɦɧħɥʜɨɪʝɭɬɫɮʟɱɯɰŋɳɲɴøɵɸθœɶʘɹɺɾɻʀʁɽʂʃʈʧʉʊʋⱱʌɣɤʍχʎʏʑʐʒʔʡʕʢǀǁǂǃ"
    "ˈˌːˑʼʴʰʱʲʷˠˤ˞↓↑→↗↘'\u0329'ᵻ"
)


def matcha_symbol_table() -> SymbolTable:
    """Matcha-TTS's 178-symbol vocabulary with its blank (the pad, id 0), so its official
    checkpoints read the same ids (``emomix prep --symbols matcha``)."""
    symbols = [PAD]
    for char in _MATCHA_PUNCTUATION + _MATCHA_LETTERS + _MATCHA_IPA:
        symbols.append(f"<unused:{char}>" if char in symbols else char)
    first = symbols.index("'")
    symbols[first], symbols[len(symbols) - 2] = "<unused:'>", "'"  # the later id wins
    return SymbolTable(symbols=symbols, add_blank=True, blank_is_pad=True)


SYMBOL_TABLES = {"emomix": default_symbol_table, "matcha": matcha_symbol_table}


# ---------------------------------------------------------------- text normalisation
_TITLES = {
    "mr": "mister", "mrs": "missus", "ms": "miss", "dr": "doctor", "prof": "professor",
    "capt": "captain", "gen": "general", "lt": "lieutenant", "sgt": "sergeant", "rev": "reverend",
    "hon": "honorable", "mt": "mount", "ft": "fort",
}  # fmt: skip
_SUFFIXES = {
    "jr": "junior", "sr": "senior", "etc": "et cetera", "ltd": "limited", "co": "company",
    "inc": "incorporated", "vs": "versus", "approx": "approximately", "dept": "department",
}  # fmt: skip
_DECADES = {
    "10": "tens", "20": "twenties", "30": "thirties", "40": "forties", "50": "fifties",
    "60": "sixties", "70": "seventies", "80": "eighties", "90": "nineties", "00": "hundreds",
}  # fmt: skip
_CURRENCIES = {"$": ("dollars", "cents"), "£": ("pounds", "pence"), "€": ("euros", "cents")}
_SYMBOL_WORDS = {"%": " percent", "&": " and ", "@": " at ", "+": " plus ", "=": " equals "}
_ZH_PUNCTUATION = str.maketrans({
    "，": ", ", "。": ". ", "！": "! ", "？": "? ", "；": "; ", "：": ": ", "、": ", ",
    "“": ' "', "”": '" ', "‘": " '", "’": "' ", "《": ' "', "》": '" ', "（": ", ", "）": ", ",
    "【": ", ", "】": ", ", "～": ", ",
})  # fmt: skip


def _sentence_end(text: str, end: int) -> bool:
    """True when the period at ``text[end-1]`` also ends a sentence."""
    rest = text[end:]
    return not rest.strip() or bool(re.match(r"\s+[A-Z\"']", rest))


def _currency(match: re.Match) -> str:
    major, minor = _CURRENCIES[match.group(1)]
    whole, cents = match.group(2).replace(",", ""), match.group(3)
    words = f"{whole} {major}"
    if cents and int(cents) > 0:
        words += f" {int(cents.ljust(2, '0'))} {minor}"
    return words


def normalize_text(text: str, language: str = "en") -> str:
    """Expand abbreviations and symbols espeak reads badly; collapse whitespace.

    Digits are left to espeak (it reads them in both languages), except for currency
    amounts, decades ("1990s") and clock times whose espeak readings are wrong or odd.
    """
    text = text.translate(_ZH_PUNCTUATION)  # before NFKC, which would fold them without spaces
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("…", "...").replace("“", '"').replace("”", '"')
    text = text.replace("‘", "'").replace("’", "'")
    text = re.sub(r"\s*(--+|[—–]|\s-\s)\s*", " — ", text)  # phonemizer keeps "—", not " - "
    text = re.sub(r"[()\[\]{}]", ", ", text)
    if language in ("en", "en-us", "en-gb"):
        text = _normalize_english(text)
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s*,(\s*,)+", ",", text)  # ", ," left by brackets
    text = re.sub(r"\s*,\s*(?=[.!?;:]|$)", "", text)  # "maybe, ." -> "maybe."
    text = re.sub(r"\s*,\s*(?=—)", " ", text)
    text = re.sub(r"\s+([,.!?;:])", r"\1", text)
    return text.strip(" ,")


def _normalize_english(text: str) -> str:
    text = re.sub(r"\be\.g\.", "for example", text, flags=re.IGNORECASE)
    text = re.sub(r"\bi\.e\.", "that is", text, flags=re.IGNORECASE)

    def title(match: re.Match) -> str:
        return _TITLES[match.group(1).lower()]

    text = re.sub(r"\b(" + "|".join(_TITLES) + r")\.(?=\s)", title, text, flags=re.IGNORECASE)

    def street(match: re.Match) -> str:
        if re.match(r"\s+[A-Z]", text[match.end():]):
            return "Saint"
        return "Street." if _sentence_end(text, match.end()) else "Street"

    text = re.sub(r"\bSt\.", street, text)

    def suffix(match: re.Match) -> str:
        word = _SUFFIXES[match.group(1).lower()]
        return word + "." if _sentence_end(text, match.end()) else word

    text = re.sub(r"\b(" + "|".join(_SUFFIXES) + r")\.", suffix, text, flags=re.IGNORECASE)
    text = re.sub(r"\bNo\.\s*(?=\d)", "number ", text)
    text = re.sub(r"([$£€])\s?(\d[\d,]*)(?:\.(\d{1,2}))?\b", _currency, text)
    text = re.sub(
        r"\b(\d{2})?(\d0)'?s\b",
        lambda m: (m.group(1) + " " if m.group(1) else "") + _DECADES[m.group(2)], text
    )
    text = re.sub(r"'(\d0)s\b", lambda m: _DECADES[m.group(1)], text)
    text = re.sub(r"\b(\d{1,2}):(\d{2})\b", lambda m: f"{m.group(1)} {m.group(2)}"
                  if m.group(2) != "00" else f"{m.group(1)} o'clock", text)
    text = re.sub(r"#\s?(?=\d)", "number ", text)
    text = re.sub(r"(\d)\.(\d+)", lambda m: f"{m.group(1)} point {' '.join(m.group(2))}", text)
    for symbol, words in _SYMBOL_WORDS.items():
        text = text.replace(symbol, words)
    return text


# ---------------------------------------------------------------- espeak
def _espeak_language(language: str) -> str:
    if language not in LANGUAGES:
        known = ", ".join(sorted(LANGUAGES))
        raise EmomixError(f"unknown language {language!r}; use one of: {known}")
    return LANGUAGES[language]


# espeak-ng keeps its data folder in a fixed 160-byte buffer (N_PATH_HOME) and appends file
# names to it; a longer path makes it print "Error processing file" and exit the process
ESPEAK_PATH_LIMIT = 100


def espeak_data_path(data_path: str | None = None) -> str:
    """espeak-ng's ``espeak-ng-data`` folder, copied once to a short folder in the temp
    directory when the installed path is longer than :data:`ESPEAK_PATH_LIMIT` (a venv inside a
    long checkout path). A symlink would not do: phonemizer resolves it back to the long path.
    ``data_path``: the installed folder (default: ``espeakng_loader``'s)."""
    if data_path is None:
        import espeakng_loader

        data_path = espeakng_loader.get_data_path()
    real = os.path.normpath(data_path)
    if len(real) <= ESPEAK_PATH_LIMIT:
        return real
    base = Path(tempfile.gettempdir())
    base = base if len(str(base)) <= 40 else Path("/tmp")
    stamp = [os.stat(os.path.join(real, name)) for name in sorted(os.listdir(real))[:50]]
    key = real + "".join(f"{s.st_size}:{s.st_mtime_ns}" for s in stamp)  # a reinstall: a new copy
    copy = base / f"emomix-espeak-{hashlib.sha1(key.encode()).hexdigest()[:12]}" / "espeak-ng-data"
    if not copy.is_dir():
        copy.parent.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(prefix=".staged-", dir=copy.parent))
        shutil.copytree(real, staged / "data")
        try:
            os.rename(staged / "data", copy)  # whole or not at all; another process may win
        except OSError:
            if not copy.is_dir():
                raise
        shutil.rmtree(staged, ignore_errors=True)
    return str(copy)


@lru_cache(maxsize=8)
def _backend(espeak_language: str):
    """One phonemizer backend per language and process (creating one loads espeak)."""
    try:
        import espeakng_loader
        from phonemizer.backend import EspeakBackend
        from phonemizer.backend.espeak.wrapper import EspeakWrapper
    except ImportError as error:
        raise EmomixError(
            f"phonemizer/espeakng-loader not importable ({error}); pip install phonemizer espeakng-loader"
        ) from None
    # espeak reads ESPEAK_DATA_PATH when the library initialises; set both ways.
    data_path = espeak_data_path(espeakng_loader.get_data_path())
    os.environ.setdefault("ESPEAK_DATA_PATH", data_path)
    EspeakWrapper.set_library(espeakng_loader.get_library_path())
    if hasattr(EspeakWrapper, "set_data_path"):
        EspeakWrapper.set_data_path(data_path)
    quiet = logging.getLogger("emomix.phonemizer")
    quiet.setLevel(logging.ERROR)
    return EspeakBackend(
        espeak_language,
        preserve_punctuation=True,
        with_stress=True,
        language_switch="remove-flags",
        logger=quiet,
    )


def _clean_mandarin(phonemes: str) -> str:
    """Rewrite espeak's ASCII-ish cmn phone names so "." and "-" stay punctuation only.

    espeak writes retroflex s as "s.", the apical vowel as "i.", the mid back vowel as "o-",
    and the rising tone (35) as "ɜ" (its IPA for "3"); we use ʂ, ɨ, ɤ and the digit 3.
    """
    phonemes = re.sub(r"s\.(?=\S)", "ʂ", phonemes)
    phonemes = re.sub(r"i\.(?=\S)", "ɨ", phonemes)
    phonemes = re.sub(r"o-(?=\S)", "ɤ", phonemes)
    return phonemes.replace("ɜ", "3")


def phonemize(texts: list[str], language: str = "en") -> list[str]:
    """IPA phonemes (stress and punctuation kept) for each text, in one batched espeak call.

    Raises EmomixError when a text is empty. ``language``: en (en-us), en-gb, zh (cmn).
    """
    espeak_language = _espeak_language(language)
    normalized = [normalize_text(t, language) for t in texts]
    for original, text in zip(texts, normalized, strict=True):
        if not text:
            raise EmomixError(f"text is empty ({original!r}); give a sentence with words to speak")
    if not normalized:
        return []
    # phonemizer mis-aligns outputs when one line phonemizes to nothing, so each text is one
    # line (whitespace collapsed above) and results are checked one-to-one.
    backend = _backend(espeak_language)
    outputs = backend.phonemize(normalized, strip=True, njobs=1)
    if len(outputs) != len(normalized):
        # a mark inside a token ("a.b") can split a line in two: redo one text per call
        outputs = [" ".join(backend.phonemize([text], strip=True, njobs=1)) for text in normalized]
    results = []
    for output in outputs:
        output = unicodedata.normalize("NFD", output).replace("—", "-")
        if espeak_language == "cmn":
            output = _clean_mandarin(output)
        results.append(re.sub(r"\s+", " ", output).strip())
    return results


def text_to_ids(text: str, table: SymbolTable, language: str = "en") -> list[int]:
    """Text -> phonemes -> ids (blanks interspersed when the table has them)."""
    if not text or not text.strip():
        raise EmomixError("text is empty; give a sentence with words to speak")
    (phonemes,) = phonemize([text], language)
    ids = table.encode(phonemes)
    if not any(i not in (table.pad_id, table.blank_id) for i in ids):
        raise EmomixError(f"text {text!r} gives no speakable phonemes; use words in {language}")
    return ids


# ---------------------------------------------------------------- what a voice can read
# The letters each espeak voice reads as words (name prefixes in the Unicode database), and
# what to call them. espeak speaks any other letter as its name ("東" -> "Chinese letter"), so a
# text holding one is refused unless the caller allows it. ASCII digits are read in every
# language; symbols and punctuation are left to the normaliser and espeak, as before.
_SCRIPTS = {
    "en-us": ("English", "Latin letters", ("LATIN ",)),
    "en-gb": ("English", "Latin letters", ("LATIN ",)),
    "cmn": ("Mandarin", "Chinese characters",
            ("CJK UNIFIED IDEOGRAPH", "CJK COMPATIBILITY IDEOGRAPH", "IDEOGRAPHIC ")),
}  # fmt: skip
_SHOWN = 8  # foreign characters named in the error; the rest are counted


def _in_script(char: str, prefixes: tuple[str, ...]) -> bool:
    """True when every letter or digit of ``char``'s NFKC form ("Ⅻ" -> "XII") is an ASCII
    digit or named with one of ``prefixes``."""
    return all("0" <= c <= "9" or unicodedata.name(c, "").startswith(prefixes)
               or unicodedata.category(c)[0] not in "LN" for c in unicodedata.normalize("NFKC", char))


def foreign_characters(text: str, language: str = "en") -> list[str]:
    """The distinct letters and digits of ``text`` that the ``language`` voice does not read as
    words, in order of first appearance ("東京" in English). Accented Latin counts as Latin."""
    prefixes = _SCRIPTS[_espeak_language(language)][2]
    chars = (c for c in unicodedata.normalize("NFC", text or "") if unicodedata.category(c)[0] in "LN")
    return list(dict.fromkeys(c for c in chars if not _in_script(c, prefixes)))


def _describe(chars: list[str]) -> str:
    shown = ", ".join(f"'{c}' (U+{ord(c):04X})" for c in chars[:_SHOWN])
    return shown + (f" and {len(chars) - _SHOWN} more" if len(chars) > _SHOWN else "")


def check_speakable(text: str | None, language: str = "en", allow_foreign: bool = False) -> None:
    """Refuse text the voice cannot read, before any synthesis. Every front door calls it
    (``mix``, ``--batch``, a notebook, an app); a tag parser calls it on each segment's text
    with the tags removed.

    Raises EmomixError when ``text`` has nothing to speak (no letter or digit once normalised:
    ``""``, ``"..."``) or, unless ``allow_foreign``, holds letters or digits outside the
    voice's script (``"東京"`` for English), naming them.
    """
    if not any(unicodedata.category(c)[0] in "LN" for c in normalize_text(text or "", language)):
        shown = f" in {text.strip()!r}" if text and text.strip() else ""
        raise EmomixError(f"nothing to speak{shown}: the text has no words or numbers; "
                          'give a sentence, e.g. "Hello there."')
    foreign = [] if allow_foreign else foreign_characters(text, language)
    if foreign:
        name, letters, _ = _SCRIPTS[_espeak_language(language)]
        raise EmomixError(f"the {name} voice cannot read {_describe(foreign)}; write the text in "
                          f"{letters}, or pass --allow-foreign-text to have espeak name them")
