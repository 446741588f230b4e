"""The official Grad-TTS decoder computation, transcribed: the oracle the fast paths are tested against.

The same weights as :class:`~emomix_cli.tts.unet.GradLogPEstimator2d`, run through the official
code's operations (``diffusion.py``): contiguous NCHW, ``x * mask`` before and after every block,
``nn.GroupNorm`` over the whole padded map, ``F.mish``, and linear attention that forms q, k and v
at every position and normalises the keys with ``softmax``. ``benchmarks/bench_decoder.py`` times
it as its baseline.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from emomix_cli.tts.unet import GradLogPEstimator2d, LinearAttention


def reference_linear_attention(attn: LinearAttention, x: Tensor) -> Tensor:
    """The official (Grad-TTS) computation of ``attn`` on an unpadded ``x``."""
    batch, _, height, width = x.shape
    qkv = attn.to_qkv(x).reshape(batch, 3, attn.heads, -1, height * width)
    query, key, value = qkv.unbind(1)
    key = key.softmax(dim=-1)
    context = torch.einsum("bhdn,bhen->bhde", key, value)
    out = torch.einsum("bhde,bhdn->bhen", context, query)
    return attn.to_out(out.reshape(batch, -1, height, width))



def _block(block, x, mask):
    conv, norm, _ = block.block
    out = F.group_norm(conv(x * mask), norm.num_groups, norm.weight, norm.bias, norm.eps)
    return F.mish(out) * mask


def _resnet(resnet, x, mask, time_emb):
    h = _block(resnet.block1, x, mask) + resnet.mlp(time_emb)[:, :, None, None]
    h = _block(resnet.block2, h, mask)
    return h + resnet.res_conv(x * mask)


def _attention(residual, x):
    rezero = residual.fn
    return reference_linear_attention(rezero.fn, x) * rezero.g + x


def reference_forward(net: GradLogPEstimator2d, x, mask, mu, t, spk, emo):
    """The official GradLogPEstimator2d.forward on ``net``'s weights (NCHW, unmasked norms)."""
    time_emb, channels = net._conditions(t, spk, emo, x.shape[-1])
    x = torch.stack([mu, x, *channels], dim=1)
    mask = mask.unsqueeze(1)
    hiddens, masks = [], [mask]
    for resnet1, resnet2, attn, downsample in net.downs:
        mask_down = masks[-1]
        x = _resnet(resnet2, _resnet(resnet1, x, mask_down, time_emb), mask_down, time_emb)
        x = _attention(attn, x)
        hiddens.append(x)
        x = downsample(x * mask_down)
        masks.append(mask_down[:, :, :, ::2])
    masks = masks[:-1]
    mask_mid = masks[-1]
    x = _resnet(net.mid_block1, x, mask_mid, time_emb)
    x = _attention(net.mid_attn, x)
    x = _resnet(net.mid_block2, x, mask_mid, time_emb)
    for resnet1, resnet2, attn, upsample in net.ups:
        mask_up = masks.pop()
        x = torch.cat((x, hiddens.pop()), dim=1)
        x = _resnet(resnet2, _resnet(resnet1, x, mask_up, time_emb), mask_up, time_emb)
        x = _attention(attn, x)
        x = upsample(x * mask_up)
    x = _block(net.final_block, x, mask)
    return (net.final_conv(x * mask) * mask).squeeze(1)
