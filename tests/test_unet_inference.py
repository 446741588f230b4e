"""The inference fast paths (masked GroupNorm, Mish, associative attention) equal the official computation."""

import torch
from reference_unet import reference_forward, reference_linear_attention

from emomix_cli.tts.unet import (
    FastMish,
    GradLogPEstimator2d,
    LinearAttention,
    MaskedGroupNorm,
    Mish,
    mish_inference,
)


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


def test_inference_mish_matches_the_definition():
    x = torch.cat([torch.linspace(-40, 40, 20001), torch.tensor([-1e4, 1e4, 0.0, 88.0, 89.0])])
    exact = x.double() * torch.tanh(torch.nn.functional.softplus(x.double()))
    fast = mish_inference(x)
    assert torch.isfinite(fast).all()
    assert (fast.double() - exact).abs().max() < 1e-5
    with torch.no_grad():
        assert torch.equal(Mish()(x), fast)
    assert torch.equal(Mish()(x[:100]), torch.nn.functional.mish(x[:100]))  # small: the native op
    assert torch.allclose(Mish()(x), torch.nn.functional.mish(x), atol=2e-6, rtol=0)  # FastMish


def test_training_mish_matches_f_mish_forward_and_backward():
    torch.manual_seed(0)
    small = (torch.randn(2, 3, 4, 5, dtype=torch.float64) * 4).requires_grad_()
    assert torch.autograd.gradcheck(FastMish.apply, (small,))
    extremes = torch.tensor([-1e30, -1e4, -104.0, -88.0, -80.0, 0.0, 19.9, 20.0, 20.1, 80.0, 88.0, 1e4, 1e30])
    x = torch.cat([torch.linspace(-30, 30, 60001), extremes])
    ours_x, native_x = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours, native = FastMish.apply(ours_x), torch.nn.functional.mish(native_x)
    upstream = torch.randn(x.shape)
    ours.backward(upstream)
    native.backward(upstream)
    assert torch.isfinite(ours).all() and torch.isfinite(ours_x.grad).all()
    assert (ours - native).abs().max() < 2e-6  # values up to 30: a few ulps; F.mish's own error ~1e-6
    assert (ours_x.grad - native_x.grad).abs().max() < 5e-6
    exact = x.double().requires_grad_()
    reference = exact * torch.tanh(torch.nn.functional.softplus(exact))
    reference.backward(upstream.double())
    assert (ours_x.grad.double() - exact.grad).abs().max() < 1e-6
    assert torch.equal(ours[-3:], x[-3:]) and torch.equal(ours_x.grad[-3:], upstream[-3:])


def test_estimator_takes_fast_mish_in_training_with_native_gradients():
    torch.manual_seed(0)
    net = GradLogPEstimator2d(dim=8, dim_mults=(1, 2), groups=4, spk_emb_dim=4, emo_emb_dim=4, n_feats=16)
    args = (torch.randn(4, 16, 64), torch.ones(4, 1, 64), torch.randn(4, 16, 64), torch.rand(4),
            torch.randn(4, 4), torch.randn(4, 4))
    args[1][0, ..., 50:] = 0
    grads = []
    for native in (False, True):
        Mish.native_training = native
        try:
            net.zero_grad()
            net(*args).square().sum().backward()
        finally:
            Mish.native_training = False
        grads.append([p.grad.clone() for p in net.parameters()])
    for fast, reference in zip(*grads, strict=True):
        assert (fast - reference).abs().max() <= 1e-4 * reference.abs().max()  # float32 rounding


def test_associative_attention_equals_the_official_computation():
    torch.manual_seed(0)
    attn = LinearAttention(16, heads=2, dim_head=8)
    x = torch.randn(2, 16, 10, 12, requires_grad=True)
    ours, official = attn(x, None), reference_linear_attention(attn, x)
    assert torch.allclose(ours, official, atol=1e-5)
    grad_ours = torch.autograd.grad(ours.square().sum(), (x, attn.to_qkv.weight))
    grad_official = torch.autograd.grad(official.square().sum(), (x, attn.to_qkv.weight))
    for a, b in zip(grad_ours, grad_official, strict=True):
        assert torch.allclose(a, b, atol=1e-4)
    layout = x.detach().contiguous(memory_format=torch.channels_last)
    assert torch.allclose(attn(layout, None), official, atol=1e-5)


def test_attention_ignores_padded_frames():
    torch.manual_seed(0)
    attn = LinearAttention(8, heads=2, dim_head=4)
    x = torch.randn(1, 8, 6, 12)
    mask = torch.ones(1, 1, 1, 12)
    mask[..., 9:] = 0
    garbage = x.clone()
    garbage[..., 9:] = 100.0  # whatever sits on padded frames must not matter
    expected = reference_linear_attention(attn, x[..., :9])
    assert torch.allclose(attn(garbage, mask)[..., :9], expected, atol=1e-5)


def test_dense_path_equals_the_masked_path_with_nothing_padded():
    torch.manual_seed(0)
    net = GradLogPEstimator2d(dim=8, dim_mults=(1, 2), groups=4, spk_emb_dim=4, emo_emb_dim=4, n_feats=16)
    for name, param in net.named_parameters():
        if name.endswith(".g"):
            param.data.fill_(0.5)  # attention on
    args = (torch.randn(2, 16, 12), torch.ones(2, 1, 12), torch.randn(2, 16, 12), torch.rand(2),
            torch.randn(2, 4), torch.randn(2, 4))
    training_path = net(*args)  # autograd on: masked GroupNorm statistics, native Mish
    with torch.inference_mode():
        dense = net(*args)
        no_mask = net(args[0], None, *args[2:])
    assert torch.allclose(training_path, dense, atol=1e-5)
    assert torch.equal(dense, no_mask)


def test_the_official_forward_equals_the_estimator_unless_padded():
    torch.manual_seed(0)
    net = GradLogPEstimator2d(dim=8, dim_mults=(1, 2), groups=4, spk_emb_dim=4, emo_emb_dim=4, n_feats=16).eval()
    for name, param in net.named_parameters():
        if name.endswith(".g"):
            param.data.fill_(0.5)
    x, mu = torch.randn(2, 16, 12), torch.randn(2, 16, 12)
    args = (torch.rand(2), torch.randn(2, 4), torch.randn(2, 4))
    full = torch.ones(2, 1, 12)
    with torch.inference_mode():
        assert torch.allclose(reference_forward(net, x, full, mu, *args), net(x, full, mu, *args), atol=1e-5)
        padded = full.clone()
        padded[..., 10:] = 0  # the official code normalises over padding too: a different function
        assert not torch.allclose(reference_forward(net, x, padded, mu, *args), net(x, padded, mu, *args), atol=1e-3)
