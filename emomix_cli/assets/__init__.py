"""The files shipped inside the package (package data, so a wheel install has them too), and
the shipped models by name (``emomix models``; ``--model NAME|PATH`` everywhere).

- :data:`MODELS`: each shipped model (a ``tts`` checkpoint, fp16 weights), its corpus and the
  recipe that trained it; :data:`JUDGES`: the independent judge SER that ``emomix eval`` judges
  each corpus with;
- :data:`DEFAULT_MODEL` names the default of ``emomix mix``, ``eval`` and ``app``;
  :data:`DEMO_MODEL` and :data:`JUDGE_SER` are its files;
- :func:`model_path` turns a name or a path into a checkpoint path (the library's way to find
  a shipped model); :func:`judge_for_model` and :func:`judge_for_corpus` find its judge.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import EmomixError

ASSETS = Path(__file__).resolve().parent

# The independent judge SER shipped for each corpus (``emomix prep --dataset`` name): the
# recipe's judge_ser.yaml trained it on the train split, apart from any model's SER.
JUDGES: dict[str, str] = {"demo": "judge_ser.pt", "demo-natural": "judge_ser_natural.pt"}


@dataclass(frozen=True)
class ShippedModel:
    """A model that ships inside the package."""

    name: str
    file: str  # the tts checkpoint, in this folder
    corpus: str  # the feature store's dataset it was trained on (``emomix prep --dataset``)
    recipe: str  # the command that trains it
    description: str

    @property
    def path(self) -> Path:
        return ASSETS / self.file

    @property
    def judge_path(self) -> Path:
        """Its corpus's independent judge SER (:data:`JUDGES`)."""
        return ASSETS / JUDGES[self.corpus]


MODELS: dict[str, ShippedModel] = {
    "espeak": ShippedModel(
        "espeak", "demo_model.pt", "demo",
        "FAMILY=flow1d bash recipes/demo/cpu_train.sh",
        "four espeak-ng voices, five acted styles (recipes/demo/RESULTS.md)",
    ),
    "natural": ShippedModel(
        "natural", "natural_model.pt", "demo-natural",
        "WIDTH=128 bash recipes/demo_natural/cpu_train.sh",
        "four natural voices (Piper's CC0 joe, reshaped by Praat), five styles; still in "
        "training, not yet the default (recipes/demo_natural/RESULTS.md)",
    ),
}
DEFAULT_MODEL = "espeak"  # the natural model takes over once it passes its quality bar
DEMO_MODEL = MODELS[DEFAULT_MODEL].path
JUDGE_SER = MODELS[DEFAULT_MODEL].judge_path


def model_path(name_or_path: str | Path | None = None) -> Path:
    """The checkpoint of a shipped model's name, or ``name_or_path`` as a path (None: the
    default model). An unknown name that is not a file is refused in one line listing the names."""
    if name_or_path is None:
        name_or_path = DEFAULT_MODEL
    if str(name_or_path) in MODELS:
        path = MODELS[str(name_or_path)].path
        if not path.is_file():
            raise EmomixError(f"the shipped model '{name_or_path}' is missing from this install "
                              f"({path}); reinstall emomix or pass --model PATH")
        return path
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    if path.suffix or len(path.parts) > 1:  # meant as a path
        raise EmomixError(f"checkpoint not found: {path}; pass the path of a tts checkpoint or a "
                          f"shipped model's name ({', '.join(MODELS)})")
    raise EmomixError(f"--model '{name_or_path}' is neither a shipped model nor a file; "
                      f"shipped models: {', '.join(MODELS)} (emomix models lists them), "
                      "or pass the path of a tts checkpoint")


def shipped_model_of(path: str | Path | None) -> ShippedModel | None:
    """The shipped model whose checkpoint ``path`` is, if any."""
    if path is None:
        return None
    resolved = Path(path).resolve()
    return next((m for m in MODELS.values() if m.path.resolve() == resolved), None)


def judge_for_model(path: str | Path | None) -> Path | None:
    """The judge SER shipped for the corpus of the shipped model at ``path`` (None for others)."""
    model = shipped_model_of(path)
    return judge_for_corpus(model.corpus) if model is not None else None


def judge_for_corpus(dataset: str) -> Path | None:
    """The shipped judge SER trained on the corpus prepared as ``dataset``, if one ships."""
    path = ASSETS / JUDGES[dataset] if dataset in JUDGES else None
    return path if path is not None and path.is_file() else None


def describe(model: ShippedModel) -> dict:
    """What ``emomix models`` shows of a shipped model (loads its checkpoint)."""
    from ..tts import load_tts

    bundle = load_tts(model.path)
    return {
        "name": model.name, "default": model.name == DEFAULT_MODEL, "family": bundle.model.family,
        "voices": list(bundle.speakers), "emotions": list(bundle.emotions),
        "parameters": sum(p.numel() for p in bundle.model.parameters()),
        "megabytes": model.path.stat().st_size / 1e6, "recipe": model.recipe,
        "description": model.description, "path": str(model.path),
    }  # fmt: skip


__all__ = ["ASSETS", "DEFAULT_MODEL", "DEMO_MODEL", "JUDGES", "JUDGE_SER", "MODELS", "ShippedModel", "describe",
           "judge_for_corpus", "judge_for_model", "model_path", "shipped_model_of"]
