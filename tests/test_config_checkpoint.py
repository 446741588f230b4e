from dataclasses import dataclass, field

import pytest
import torch

from emomix_cli.checkpoint import load_checkpoint, save_checkpoint
from emomix_cli.config import load_config, to_dict
from emomix_cli.errors import EmomixError


@dataclass
class Inner:
    lr: float = 1e-3
    dims: tuple[int, ...] = (1, 2, 4)


@dataclass
class Outer:
    name: str = "x"
    steps: int = 10
    inner: Inner = field(default_factory=Inner)


def test_yaml_and_overrides_build_typed_dataclass(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: demo\ninner:\n  lr: 0.5\n")
    cfg = load_config(Outer, path, ["steps=7", "inner.dims=[2,3]"])
    assert cfg.name == "demo" and cfg.steps == 7 and cfg.inner.lr == 0.5
    assert cfg.inner.dims == (2, 3)
    assert to_dict(cfg)["inner"]["dims"] == [2, 3]


def test_unknown_key_is_rejected_by_name(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("inner:\n  learning_rate: 1\n")
    with pytest.raises(EmomixError, match="inner.learning_rate"):
        load_config(Outer, path)


def test_wrong_type_is_named(tmp_path):
    with pytest.raises(EmomixError, match="steps"):
        load_config(Outer, None, ["steps=abc"])


@pytest.mark.parametrize("override, words", [
    ("steps=1.5", "'steps' must be a whole number, got 1.5"), ("steps=", "'steps' must be a whole number, got null"),
    ("inner.lr=fast", "'inner.lr' must be a number, got 'fast'"), ("name=", "'name' must be a string, got null"),
])
def test_type_errors_read_as_english(override, words):
    with pytest.raises(EmomixError) as caught:
        load_config(Outer, None, [override])
    assert words in str(caught.value) and "a int" not in str(caught.value)


def test_checkpoint_kind_is_checked(tmp_path):
    path = save_checkpoint(tmp_path / "a.pt", "ser", {"w": torch.ones(2)})
    assert load_checkpoint(path, "ser")["w"].sum() == 2
    with pytest.raises(EmomixError, match="'ser' checkpoint"):
        load_checkpoint(path, "tts")
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(EmomixError, match="not an emomix checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt", "tts")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(EmomixError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt", "tts")
    with pytest.raises(EmomixError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt", "tts")
