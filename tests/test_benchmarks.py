"""The benchmarks' baselines stay honest: the straightforward U-Net computes the same score."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import torch

from emomix_cli.tts.unet import GradLogPEstimator2d

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_straightforward_unet_equals_the_estimator_padded_or_not():
    bench = _load("bench_decoder")
    torch.manual_seed(0)
    net = GradLogPEstimator2d(dim=8, dim_mults=(1, 2), groups=4, spk_emb_dim=4, emo_emb_dim=4, n_feats=16).eval()
    for name, param in net.named_parameters():
        if name.endswith(".g"):
            param.data.fill_(0.5)
    x, mu = torch.randn(2, 16, 12), torch.randn(2, 16, 12)
    args = (torch.rand(2), torch.randn(2, 4), torch.randn(2, 4))
    full = torch.ones(2, 1, 12)
    with torch.inference_mode():
        assert torch.allclose(bench.reference_forward(net, x, full, mu, *args), net(x, full, mu, *args), atol=1e-5)
        padded = full.clone()
        padded[..., 10:] = 0  # the official code normalises over padding too: a different function
        assert not torch.allclose(bench.reference_forward(net, x, padded, mu, *args), net(x, padded, mu, *args), atol=1e-3)


def test_run_all_lists_every_benchmark_and_rejects_unknown_names():
    listed = subprocess.run([sys.executable, BENCHMARKS / "run.py", "--list", "--device", "cuda"],
                            capture_output=True, text=True, check=True).stdout
    for name in ("decoder", "synthesis", "vocoder", "train", "prep", "train-gpu-bf16"):
        assert f"## {name}:" in listed
    bad = subprocess.run([sys.executable, BENCHMARKS / "run.py", "--only", "nope"], capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown benchmark" in bad.stderr
