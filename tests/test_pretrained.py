"""Official Matcha-TTS checkpoints load whole into the ``matcha`` preset (docs/DESIGN.md §1.7).

The fixture ``tests/data/matcha_tiny`` was written by ``benchmarks/matcha_parity.py --fixture``
with the official Matcha-TTS code: a reduced-size model of the official architecture (4
speakers, random weights with every zero-initialised tensor perturbed) saved as a Lightning
checkpoint with OmegaConf hyper-parameters, and the official outputs on fixed inputs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from emomix_cli.audio import AudioConfig
from emomix_cli.config import from_dict
from emomix_cli.errors import EmomixError
from emomix_cli.text import default_symbol_table, matcha_symbol_table
from emomix_cli.tts.model import EmoMixTTS, TTSConfig, merge_nested
from emomix_cli.tts.pretrained import load_init_weights, read_checkpoint, state_dict_of

FIXTURE = Path(__file__).parent / "data" / "matcha_tiny"


@pytest.fixture(scope="module")
def reference():
    return torch.load(FIXTURE / "reference.pt", weights_only=True)


def matcha_model(reference, **overrides) -> EmoMixTTS:
    torch.manual_seed(0)
    return EmoMixTTS(from_dict(TTSConfig, merge_nested(reference["config"], overrides))).eval()


def test_the_official_checkpoint_loads_whole_and_computes_the_official_function(reference):
    model = matcha_model(reference)
    report = load_init_weights(model, FIXTURE / "official.ckpt", matcha_symbol_table(),
                               AudioConfig())
    official = state_dict_of(read_checkpoint(FIXTURE / "official.ckpt"))
    assert report.source == "matcha" and not report.skipped and not report.unused
    assert sorted(report.loaded) == sorted(k for k in official if k not in ("mel_mean", "mel_std"))
    assert all(name.startswith(("decoder.estimator.emo_", "emo_proj", "encoder.emo_in"))
               or name == "emo_null" for name in report.new)  # only the new emotion paths
    data, expected = reference["inputs"], reference["outputs"]
    spk = model.speaker_vector(data["speaker"])
    with torch.no_grad():
        mu_x, logw, _ = model._encode_tokens(data["tokens"], data["lengths"],
                                             model.emotion_vector(data["emotion"]), spk)
        mask = torch.ones(1, 1, data["x"].shape[-1])

        def field(x, t):
            return model.velocity(x, mask, data["mu"], t, data["emotion"], spk)

        velocity = field(data["x"], data["t"])
        euler = model.decoder.solve(field, data["mu"], mask, "euler", 10, 1.0, x_start=data["z"])
    for name, ours in (("mu_x", mu_x), ("logw", logw), ("velocity", velocity), ("euler10", euler)):
        assert (ours - expected[name]).abs().max() < 1e-4, name


def test_the_emotion_paths_start_silent_and_the_model_has_matchas_statistics(reference):
    model = matcha_model(reference)
    load_init_weights(model, FIXTURE / "official.ckpt", matcha_symbol_table(), AudioConfig())
    data = reference["inputs"]
    mask = torch.ones(1, 1, data["x"].shape[-1])
    spk = model.speaker_vector(data["speaker"])
    with torch.no_grad():
        a = model.velocity(data["x"], mask, data["mu"], 0.5, data["emotion"], spk)
        b = model.velocity(data["x"], mask, data["mu"], 0.5, -3 * data["emotion"], spk)
    assert torch.equal(a, b)
    assert model.cfg.mel_mean == pytest.approx(-5.536622) and model.cfg.mel_std == pytest.approx(2.116101)


@pytest.mark.parametrize("change,message", [
    ({"mel_std": 1.0}, "another mel config: the checkpoint normalises"),
    ({"speaker_encoder": "none"}, "does not load whole"),
    ({"decoder": "score2d"}, "train with preset: matcha"),
])
def test_a_model_that_does_not_fit_the_checkpoint_is_refused_in_one_line(reference, change, message):
    model = matcha_model(reference, **change)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(EmomixError, match=message) as error:
        load_init_weights(model, FIXTURE / "official.ckpt", matcha_symbol_table(), AudioConfig())
    assert "\n" not in str(error.value)
    if "decoder" not in change:  # checked before anything is copied
        assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())


def test_a_store_of_another_vocabulary_or_mel_is_refused(reference):
    with pytest.raises(EmomixError, match="prep --symbols matcha"):
        load_init_weights(matcha_model(reference), FIXTURE / "official.ckpt",
                          default_symbol_table(), AudioConfig())
    with pytest.raises(EmomixError, match="hop_length 200"):
        load_init_weights(matcha_model(reference), FIXTURE / "official.ckpt",
                          matcha_symbol_table(), AudioConfig(hop_length=200))


def test_other_speakers_start_a_fresh_speaker_table_and_everything_else_loads(reference):
    model = matcha_model(reference, n_speakers=7)
    report = load_init_weights(model, FIXTURE / "official.ckpt", matcha_symbol_table(),
                               AudioConfig())
    assert report.skipped == ["spk_emb.weight"] and not report.unused
    assert len(report.loaded) == len(state_dict_of(read_checkpoint(FIXTURE / "official.ckpt"))) - 3


def test_a_checkpoint_of_another_vocabulary_is_refused(reference, tmp_path):
    state = state_dict_of(read_checkpoint(FIXTURE / "official.ckpt"))
    state["encoder.emb.weight"] = state["encoder.emb.weight"][:150]
    torch.save({"state_dict": state}, tmp_path / "other.ckpt")
    with pytest.raises(EmomixError, match="another vocabulary: the checkpoint embeds 150"):
        load_init_weights(matcha_model(reference), tmp_path / "other.ckpt")


def test_a_lightning_checkpoint_is_read_without_importing_its_classes():
    import sys

    blob = read_checkpoint(FIXTURE / "official.ckpt")
    assert "omegaconf" not in sys.modules and "lightning" not in sys.modules
    assert torch.is_tensor(blob["state_dict"]["mel_mean"])


def test_the_matcha_vocabulary_has_178_ids_and_intersperses_the_pad():
    table = matcha_symbol_table()
    assert len(table) == 178 and table.blank_id == 0 and table.pad_id == 0
    ids = table.encode("ab")
    assert ids == [0, table.symbols.index("a"), 0, table.symbols.index("b"), 0]
    assert table.symbols.index(";") == 1 and table.symbols[-1] == "ᵻ"


def test_train_refuses_a_mismatched_checkpoint_before_writing_anything(reference, tmp_path,
                                                                       tiny_store):
    from typer.testing import CliRunner

    from emomix_cli.audio import AudioConfig as Audio
    from emomix_cli.checkpoint import save_checkpoint
    from emomix_cli.cli import app
    from emomix_cli.ser.train import ser_payload
    from tests.test_tts_train import tiny_ser, write_config

    ser = save_checkpoint(tmp_path / "ser.pt", "ser", ser_payload(tiny_ser(), Audio()))
    sizes = {k: reference["config"][k] for k in ("n_enc_channels", "filter_channels",
                                                  "filter_channels_dp", "n_enc_layers", "flow")}
    config = write_config(tmp_path, tiny_store, ser, name="matcha_run", preset="matcha",
                          model=sizes)
    result = CliRunner().invoke(app, ["train", "tts", "--config", config, "--init-from",
                                      str(FIXTURE / "official.ckpt")])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "prep --symbols matcha" in " ".join(result.output.split())
    assert not (tmp_path / "matcha_run").exists()
