r"""Inline emotion tags: every form, escapes, and every refusal with the tag and its position."""

import pytest

from emomix_cli.errors import EmomixError
from emomix_cli.tags import Segment, escape_tags, has_tags, parse_mix, parse_tags

EMOTIONS = ["angry", "happy", "neutral", "sad", "surprise"]


def test_untagged_text_is_one_segment_with_the_default_mix():
    assert parse_tags("Hello there.", EMOTIONS, {"angry": 0.6, "happy": 0.4}) == [
        Segment("Hello there.", {"angry": 0.6, "happy": 0.4})]
    with pytest.raises(EmomixError, match="no emotion weight given"):
        parse_tags("Hello there.", EMOTIONS)  # as a global mix with no weight


def test_every_tag_form():
    text = "[angry=0.6,happy=0.4] One. [sad] Two, [sad=0.3] three [neutral>angry=0.8] four."
    one, two, three, four = parse_tags(text, EMOTIONS)
    assert one == Segment("One.", {"angry": 0.6, "happy": 0.4}, None, "[angry=0.6,happy=0.4]", 1)
    assert two.text == "Two," and two.weights == {"sad": 1.0} and two.position == 28
    # intensity keeps its meaning: a lone weight w < 1 is w of the emotion, 1 − w of Neutral
    assert three.weights == pytest.approx({"neutral": 0.7, "sad": 0.3})
    assert list(three.weights) == ["neutral", "sad"]  # base (largest) first, as everywhere
    assert four.weights == {"neutral": 1.0}
    assert four.weights_end == pytest.approx({"angry": 0.8, "neutral": 0.2})
    assert four.tag == "[neutral>angry=0.8]" and text[four.position - 1] == "["


def test_names_are_case_and_space_insensitive_and_a_constant_ramp_is_constant():
    (segment,) = parse_tags("[ Angry = 0.5 , SAD=0.5 ] Hi.", EMOTIONS)
    assert segment.weights == {"angry": 0.5, "sad": 0.5}
    (same,) = parse_tags("[sad>sad] Hi.", EMOTIONS)
    assert same.weights == {"sad": 1.0} and same.weights_end is None


def test_words_before_the_first_tag_take_the_default_mix_or_neutral():
    lead, tagged = parse_tags("Well, [angry] now!", EMOTIONS, {"happy": 0.5})
    assert lead == Segment("Well,", {"happy": 0.5, "neutral": 0.5})
    assert tagged.text == "now!"
    lead, _ = parse_tags("Well, [angry] now!", EMOTIONS)
    assert lead.weights == {"neutral": 1.0}
    with pytest.raises(EmomixError, match="no 'neutral'"):
        parse_tags("Well, [angry] now!", ["angry", "sad"])
    # punctuation alone before the first tag is not words; a default mix would colour nothing
    assert len(parse_tags("... [angry] now!", EMOTIONS)) == 1
    with pytest.raises(EmomixError, match=r"happy=0.5 is for words before the first tag.*'\[angry\]'"):
        parse_tags("[angry] now!", EMOTIONS, {"happy": 0.5})


def test_escaped_brackets_are_literal():
    text = r"See \[1\] and [sad] the rest \[sic\]."
    first, second = parse_tags(text, EMOTIONS, {"happy": 1})
    assert first.text == "See [1] and" and second.text == "the rest [sic]."
    assert has_tags(text) and not has_tags(r"See \[1\].") and has_tags("broken [tag")
    spoken = "Tom [aside] said so [sic]."
    assert parse_tags(escape_tags(spoken), EMOTIONS, {"sad": 1}) == [Segment(spoken, {"sad": 1.0})]


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("Hi [angy] there", ["tag '[angy]' at character 4", "unknown emotion 'angy'", "angry, happy"]),
        ("[angry=1.5] Hi", ["tag '[angry=1.5]' at character 1", "sum to 1.5 > 1"]),
        ("[angry=0.8,sad=0.4] Hi", ["at character 1", "sum to 1.2 > 1"]),
        ("[neutral>angry=2] Hi", ["tag '[neutral>angry=2]'", "sum to 2 > 1"]),
        ("Hi. [sad there", ["tag '[sad there' at character 5 is not closed", "\\["]),
        ("[sad [angry] x", ["tag '[sad [angry] x' at character 1 is not closed"]),
        ("[sad] Hi [angry]", ["tag '[angry]' at character 10 has no words after it"]),
        ("[sad] Hi [angry] ... [happy] yes", ["tag '[angry]' at character 10 has no words"]),
        ("[sad=-0.5] Hi", ["tag '[sad=-0.5]' at character 1", ">= 0, got -0.5"]),
        ("[sad=lots] Hi", ["tag '[sad=lots]' at character 1", "needs a number, got 'lots'"]),
        ("[sad=inf] Hi", ["at character 1", "finite"]),
        ("[] Hi", ["tag '[]' at character 1", "empty"]),
        ("[sad>angry>happy] Hi", ["at character 1", "one '>'"]),
        ("[sad=0.2,sad=0.3] Hi", ["at character 1", "given twice"]),
        ("[sad,=0.3] Hi", ["at character 1", "bad weight '=0.3'"]),
    ],
)
def test_bad_tags_are_refused_naming_the_tag_and_its_position(text, fragments):
    with pytest.raises(EmomixError) as refused:
        parse_tags(text, EMOTIONS)
    message = str(refused.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_parse_mix():
    assert parse_mix("angry=0.6, Happy=0.4") == {"angry": 0.6, "happy": 0.4}
    assert parse_mix("sad") == {"sad": 1.0} and parse_mix("") == {}
    for bad in ("angry=", "=0.3", "angry=x", "angry=nan"):
        with pytest.raises(EmomixError):
            parse_mix(bad)
