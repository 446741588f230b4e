"""The inference fast path of the masked GroupNorm must equal the general masked path."""

import torch

from emomix_cli.tts.unet import GradLogPEstimator2d, MaskedGroupNorm


def test_prefix_group_norm_equals_masked_statistics():
    torch.manual_seed(0)
    norm = MaskedGroupNorm(4, 8)
    x = torch.randn(3, 8, 10, 16)
    mask = torch.ones(3, 1, 1, 16)
    mask[..., 13:] = 0
    general = norm(x, mask)  # grad enabled: the general path
    with torch.inference_mode():
        fast = norm(x, mask)
    assert torch.allclose(general * mask, fast * mask, atol=1e-5)


def test_unequal_lengths_fall_back_to_the_general_path():
    torch.manual_seed(0)
    norm = MaskedGroupNorm(2, 4)
    x = torch.randn(2, 4, 6, 12)
    mask = torch.ones(2, 1, 1, 12)
    mask[1, ..., 7:] = 0
    general = norm(x, mask)
    with torch.no_grad():
        assert torch.allclose(norm(x, mask), general, atol=1e-6)


def test_estimator_inference_equals_training_path_on_a_padded_batch():
    torch.manual_seed(0)
    net = GradLogPEstimator2d(dim=8, dim_mults=(1, 2), groups=4, spk_emb_dim=4, emo_emb_dim=4, n_feats=16).eval()
    x, mu = torch.randn(2, 16, 20), torch.randn(2, 16, 20)
    mask = torch.ones(2, 1, 20)
    mask[..., 17:] = 0
    args = (x, mask, mu, torch.rand(2), torch.randn(2, 4), torch.randn(2, 4))
    reference = net(*args)
    with torch.inference_mode():
        fast = net(*args)
    assert torch.allclose(reference * mask, fast * mask, atol=1e-4)


def test_channels_last_layout_gives_the_same_score():
    torch.manual_seed(0)
    net = GradLogPEstimator2d(dim=8, dim_mults=(1, 2), groups=4, spk_emb_dim=4, emo_emb_dim=4, n_feats=16).eval()
    args = (torch.randn(2, 16, 12), torch.ones(2, 1, 12), torch.randn(2, 16, 12), torch.rand(2),
            torch.randn(2, 4), torch.randn(2, 4))
    with torch.inference_mode():
        reference = net(*args)
        fast = net.use_channels_last(True)(*args)
    assert net.channels_last and fast.is_contiguous()
    assert torch.allclose(reference, fast, atol=1e-5)
