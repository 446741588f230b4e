"""Where one optimizer step of the acoustic model goes: time per phase, and levers.

The step is the real training step of ``emomix train tts`` (``tts/train.py`` losses inside
``train_loop``'s optimizer step): ``compute_loss`` (encoder, MAS, segment, decoder), the style
loss through a compact SER with the ``x0_weight`` SNR weighting, backward, gradient clipping
(1.0), Adam and the EMA update; the "small" preset with the CPU continuation's settings
(condition dropout 0.15, batch 16, decoder segment 64), on a synthetic batch shaped like the
demo corpus (tokens ~121, mel frames ~260), on the CPU.

How the phases are timed, without touching library code:

* forward: forward pre/post hooks on ``model.encoder`` and ``model.decoder.estimator``, a timed
  wrapper around ``model._align`` (MAS) and ``ser.feature_maps``; "rest of compute_loss" is the
  ``compute_loss`` time minus those, "Gram + distance" the style time minus the two SER calls;
* backward: the time at which autograd delivers the gradient of boundary tensors (tensor hooks
  on x̂0, the decoder's output and inputs, the encoder's outputs). The CPU autograd engine runs
  one node at a time, the most recently created ready node first, so the backward runs in
  reverse forward order and the slices between these moments belong to one part each: style
  (SER + Gram) → x̂0/diffusion-loss glue → decoder → losses/segment glue → encoder.

Warm-up one step (allocations, numba JIT of MAS), then the mean over ``--steps``. The levers
table: measured s/step per (out_size, dec_dim), and rows for the style loss every k steps
(train config ``style_every``) DERIVED from the measured style cost (its forward + its backward
slice) amortised over k; ``--measure-no-style`` adds a measured step without the style loss to
check the derivation. ``--ops N`` adds torch.profiler's N costliest operators of one more step
of the first configuration (which kernels the phases spend their time in). ``--native-mish``
adds, per configuration, a twin run with ``F.mish`` in the decoder's training path (the U-Net's
``Mish.native_training``; by default it takes ``FastMish`` on CPU), its steps interleaved with the
default run's so both see the same machine load: a same-run before/after.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/profile_train_step.py --out-size 172 64 32 --steps 3
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch
from torch import nn

from emomix_cli.ser.model import SER, SERConfig
from emomix_cli.train_loop import ema_decay_at, ema_update
from emomix_cli.tts.model import EmoMixTTS, TTSConfig, preset
from emomix_cli.tts.sde import x0_weight
from emomix_cli.tts.train import style_loss
from emomix_cli.tts.unet import Mish

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import batch  # noqa: E402  (the same synthetic batch as bench_train.py)

# (key, label); the forward/backward/optimizer groups are printed in this order
PHASES = [
    ("enc", "fwd  text encoder + duration predictor"),
    ("mas", "fwd  MAS (log-likelihood + monotonic search)"),
    ("rest", "fwd  dur/prior/diff losses, segment, diffusion"),
    ("dec", "fwd  decoder U-Net"),
    ("ser_fake", "fwd  style: SER on x0_hat (with grad)"),
    ("ser_real", "fwd  style: SER on target (no grad)"),
    ("gram", "fwd  style: Gram matrices + distance"),
    ("bw_style", "bwd  style (SER + Gram)"),
    ("bw_glue1", "bwd  x0_hat / diffusion-loss glue"),
    ("bw_dec", "bwd  decoder U-Net"),
    ("bw_glue2", "bwd  losses / segment / diffusion glue"),
    ("bw_enc", "bwd  encoder (+ embeddings, grad accumulation)"),
    ("clip", "opt  grad clip (norm 1.0)"),
    ("adam", "opt  Adam step"),
    ("ema", "opt  EMA update"),
    ("other", "     other (zero_grad, loss sum, hooks)"),
]
SUMS = {
    "forward total": ["enc", "mas", "rest", "dec", "ser_fake", "ser_real", "gram"],
    "backward total": ["bw_style", "bw_glue1", "bw_dec", "bw_glue2", "bw_enc"],
    "style loss total (fwd + bwd)": ["ser_fake", "ser_real", "gram", "bw_style"],
}
STYLE = SUMS["style loss total (fwd + bwd)"]


class Clock:
    """Named moments of the current step (the first record of a name wins unless ``last``)."""

    def __init__(self):
        self.t: dict[str, float] = {}

    def mark(self, name: str, last: bool = False) -> None:
        if last or name not in self.t:
            self.t[name] = time.perf_counter()

    def hook(self, name: str, last: bool = False):
        def record(*_):
            self.mark(name, last)

        return record


def config(out_size: int, dec_dim: int | None) -> TTSConfig:
    values = {**preset("small"), "n_vocab": 181, "emotion_dim": 64, "n_speakers": 4,
              "speaker_encoder": "table", "cond_dropout": 0.15, "out_size": out_size}
    if dec_dim is not None:
        values["dec_dim"] = dec_dim
    return TTSConfig(**values)


class Profiled:
    """One model + SER + optimizer + EMA, instrumented; :meth:`step` = one timed training step."""

    def __init__(self, cfg: TTSConfig, batch_size: int):
        torch.manual_seed(0)
        self.cfg = cfg
        self.model = EmoMixTTS(cfg).train()
        ser = SER(SERConfig.compact(emotions=["a", "b", "c", "d", "e"]))
        self.ser = ser.eval().requires_grad_(False)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(self.params, lr=1e-4)
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.data = batch(cfg, batch_size, torch.device("cpu"))
        self.n_steps = 0
        self.clock = Clock()
        self._instrument()

    def _instrument(self) -> None:
        clock, model = self.clock, self.model
        model.encoder.register_forward_pre_hook(clock.hook("enc0"))
        model.encoder.register_forward_hook(self._encoder_out)
        estimator = model.decoder.estimator
        estimator.register_forward_pre_hook(self._decoder_in)
        estimator.register_forward_hook(self._decoder_out)
        model._align = self._timed(model._align, "mas")  # instance attribute: compute_loss finds it
        feature_maps = self.ser.feature_maps

        def timed_maps(mel, lengths=None):
            name = "ser_fake" if torch.is_grad_enabled() else "ser_real"
            clock.mark(name + "0")
            maps = feature_maps(mel, lengths)
            clock.mark(name + "1")
            return maps

        self.ser.feature_maps = timed_maps

    def _timed(self, fn, name: str):
        def wrapper(*args, **kwargs):
            self.clock.mark(name + "0")
            result = fn(*args, **kwargs)
            self.clock.mark(name + "1")
            return result

        return wrapper

    # backward boundaries: a tensor hook fires once its gradient is complete
    def _encoder_out(self, module, args, outputs) -> None:
        self.clock.mark("enc1")
        mu_x, logw, _ = outputs
        for tensor in (mu_x, logw):
            if tensor.requires_grad:
                tensor.register_hook(self.clock.hook("bw_enc_start"))  # the first of the two

    def _decoder_in(self, module, args) -> None:
        self.clock.mark("dec0")
        for tensor in (args[0], args[2]):  # x_t and μ of the segment
            if tensor.requires_grad:
                tensor.register_hook(self.clock.hook("bw_dec_end", last=True))  # the later one

    def _decoder_out(self, module, args, score) -> None:
        self.clock.mark("dec1")
        score.register_hook(self.clock.hook("bw_dec_start"))

    def step(self, with_style: bool = True) -> dict[str, float]:
        """One training step as train_loop runs it; returns seconds per phase."""
        clock, model, cfg = self.clock, self.model, self.cfg
        clock.t.clear()
        clock.mark("start")
        out = model.compute_loss(*self.data, out_size=cfg.out_size)
        clock.mark("loss1")
        loss = out["dur_loss"] + out["prior_loss"] + out["diff_loss"]
        if with_style:
            weight = x0_weight(out["t"], cfg.beta_min, cfg.beta_max)
            clock.mark("style0")
            style = style_loss(self.ser, out["x0_hat"], out["target"], out["seg_mask"], weight)
            clock.mark("style1")
            out["x0_hat"].register_hook(clock.hook("bw_x0"))
            loss = loss + 1e-4 * style
        self.opt.zero_grad(set_to_none=True)
        clock.mark("bw0")
        loss.backward()
        clock.mark("bw1")
        nn.utils.clip_grad_norm_(self.params, 1.0)
        clock.mark("clip1")
        self.opt.step()
        clock.mark("adam1")
        self.n_steps += 1
        ema_update(self.ema, model, ema_decay_at(0.999, self.n_steps))
        clock.mark("end")
        return self._phases(with_style)

    def _phases(self, with_style: bool) -> dict[str, float]:
        t = self.clock.t

        def span(a: str, b: str) -> float:
            return t[b] - t[a]

        p = {
            "enc": span("enc0", "enc1"),
            "mas": span("mas0", "mas1"),
            "dec": span("dec0", "dec1"),
            "clip": span("bw1", "clip1"),
            "adam": span("clip1", "adam1"),
            "ema": span("adam1", "end"),
        }
        p["rest"] = span("start", "loss1") - p["enc"] - p["mas"] - p["dec"]
        if with_style:
            p["ser_fake"] = span("ser_fake0", "ser_fake1")
            p["ser_real"] = span("ser_real0", "ser_real1")
            p["gram"] = span("style0", "style1") - p["ser_fake"] - p["ser_real"]
            p["bw_style"] = span("bw0", "bw_x0")
            p["bw_glue1"] = span("bw_x0", "bw_dec_start")
        else:
            p["ser_fake"] = p["ser_real"] = p["gram"] = p["bw_style"] = 0.0
            p["bw_glue1"] = span("bw0", "bw_dec_start")
        p["bw_dec"] = span("bw_dec_start", "bw_dec_end")
        p["bw_glue2"] = span("bw_dec_end", "bw_enc_start")
        p["bw_enc"] = span("bw_enc_start", "bw1")
        p["total"] = span("start", "end")
        p["other"] = p["total"] - sum(v for k, v in p.items() if k != "total")
        return p


def _mean(run: Profiled, steps: list[dict[str, float]]) -> dict[str, float]:
    mean = {k: sum(s[k] for s in steps) / len(steps) for k in steps[0]}
    mean["params_M"] = sum(p.numel() for p in run.params) / 1e6
    return mean


def _step(run: Profiled, with_style: bool, native_mish: bool) -> dict[str, float]:
    Mish.native_training = native_mish
    try:
        return run.step(with_style)
    finally:
        Mish.native_training = False


def measure(out_size: int, dec_dim: int | None, args, with_style: bool = True) -> dict[str, float]:
    run = Profiled(config(out_size, dec_dim), args.batch)
    run.step(with_style)  # warm-up
    return _mean(run, [run.step(with_style) for _ in range(args.steps)])


def measure_mish_pair(out_size: int, dec_dim: int | None, args):
    """(default, F.mish) means: two identical runs whose steps alternate."""
    runs = [Profiled(config(out_size, dec_dim), args.batch) for _ in range(2)]
    steps: list[list[dict[str, float]]] = [[], []]
    for index in range(args.steps + 1):  # the first step of each: warm-up
        for native, run in enumerate(runs):
            phases = _step(run, True, bool(native))
            if index:
                steps[native].append(phases)
    return _mean(runs[0], steps[0]), _mean(runs[1], steps[1])


def print_ops(out_size: int, dec_dim: int | None, args) -> None:
    from torch.profiler import ProfilerActivity, profile

    run = Profiled(config(out_size, dec_dim), args.batch)
    run.step()  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run.step()
    print(f"\ntop {args.ops} operators of one step, out_size {out_size} dec_dim {run.cfg.dec_dim} "
          "(torch.profiler, self CPU time; forward and backward kernels together)")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.ops,
                                    max_name_column_width=40))


def print_phases(results: list[tuple[str, dict[str, float]]]) -> None:
    width = 48
    print("\nphases of one step: ms (% of step), mean of the measured steps, all MEASURED")
    print(f"{'phase':{width}}" + "".join(f"{name:>17}" for name, _ in results))
    for key, label in PHASES:
        cells = [f"{1e3 * r[key]:9.0f} ({100 * r[key] / r['total']:3.0f}%)" for _, r in results]
        print(f"{label:{width}}" + "".join(f"{c:>17}" for c in cells))
    print("-" * (width + 17 * len(results)))
    for name, keys in SUMS.items():
        sums = [(sum(r[k] for k in keys), r["total"]) for _, r in results]
        cells = [f"{1e3 * s:9.0f} ({100 * s / total:3.0f}%)" for s, total in sums]
        print(f"{name:{width}}" + "".join(f"{c:>17}" for c in cells))
    cells = [f"{1e3 * r['total']:11.0f} (100%)" for _, r in results]
    print(f"{'step total':{width}}" + "".join(cells))


def print_levers(rows: list[tuple[int, int, dict[str, float], dict[str, float] | None]]) -> None:
    print("\nlevers: s/step and steps/s. 'measured' = the mean step above; 'derived' = measured "
          "step - (1 - 1/k) x measured style cost\n(style fwd + its bwd slice), i.e. style_every=k "
          "amortised; 'measured, no style' = a separate timed run without the style loss")
    print(f"{'out_size':>8} {'dec_dim':>7} {'params M':>8} {'style_every':>11} {'s/step':>8} "
          f"{'steps/s':>8} {'vs k=1':>7}  kind")
    for out_size, dec_dim, r, no_style in rows:
        style = sum(r[k] for k in STYLE)
        entries = [(1, r["total"], "measured")]
        entries += [(k, r["total"] - (1 - 1 / k) * style, "derived") for k in (2, 4)]
        entries.append(("off", r["total"] - style, "derived"))
        if no_style is not None:
            entries.append(("off", no_style["total"], "measured, no style"))
        for k, seconds, kind in entries:
            print(f"{out_size:8d} {dec_dim:7d} {r['params_M']:8.2f} {k!s:>11} {seconds:8.2f} "
                  f"{1 / seconds:8.3f} {r['total'] / seconds:6.2f}x  {kind}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--out-size", type=int, nargs="+", default=[64],
                        help="decoder segment(s) in frames (64: the CPU continuation's)")
    parser.add_argument("--dec-dim", type=int, nargs="+", default=None,
                        help="decoder width(s) (default: the small preset's)")
    parser.add_argument("--steps", type=int, default=3, help="measured steps (after one warm-up)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--measure-no-style", action="store_true",
                        help="also time steps without the style loss (checks the derived rows)")
    parser.add_argument("--native-mish", action="store_true",
                        help="also time each configuration with F.mish in the decoder (interleaved)")
    parser.add_argument("--ops", type=int, default=0, metavar="N",
                        help="also print the N costliest operators (torch.profiler), first config")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dec_dims = args.dec_dim or [preset("small")["dec_dim"]]
    print(f"device cpu, threads {args.threads}, batch {args.batch}, tokens 121, mel frames 260, "
          f"preset small (cond_dropout 0.15), 1 warm-up + {args.steps} measured steps")
    results, rows = [], []
    for dec_dim in dec_dims:
        for out_size in args.out_size:
            native = None
            if args.native_mish:
                r, native = measure_mish_pair(out_size, dec_dim, args)
            else:
                r = measure(out_size, dec_dim, args)
            no_style = None
            if args.measure_no_style:
                no_style = measure(out_size, dec_dim, args, with_style=False)
            results.append((f"S{out_size} d{dec_dim}", r))
            rows.append((out_size, dec_dim, r, no_style))
            print(f"  measured out_size {out_size} dec_dim {dec_dim}: {r['total']:.2f} s/step"
                  + (f" ({no_style['total']:.2f} without style)" if no_style else ""), flush=True)
            if native is not None:
                results.append((f"S{out_size} F.mish", native))
                print(f"  measured out_size {out_size} dec_dim {dec_dim} with F.mish: "
                      f"{native['total']:.2f} s/step (FastMish {native['total'] / r['total']:.2f}x "
                      f"faster; decoder bwd {1e3 * native['bw_dec']:.0f} -> {1e3 * r['bw_dec']:.0f} ms, "
                      f"fwd {1e3 * native['dec']:.0f} -> {1e3 * r['dec']:.0f} ms)", flush=True)
    print_phases(results)
    print_levers(rows)
    if args.ops:
        print_ops(args.out_size[0], dec_dims[0], args)


if __name__ == "__main__":
    main()
