"""Transitional re-exports: the feature store code now lives in two modules.

- :mod:`emomix_cli.prep`: corpus -> feature store (``prep``, ``PrepSummary``, ``summary_table``);
- :mod:`emomix_cli.datasets`: reading it and feeding training (``FeatureStore``, ``MelDataset``,
  ``collate``, ``pad_mels``, the samplers).

Import from those. This module goes once ``cli.py``, ``evaluate.py`` and ``benchmarks/`` do.
"""

from .datasets import (  # noqa: F401
    ClassBalancedSampler,
    FeatureStore,
    LengthBucketSampler,
    MelDataset,
    collate,
    pad_mels,
)
from .prep import DATASETS, PrepSummary, prep, summary_table  # noqa: F401
