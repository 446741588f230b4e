"""The one training loop shared by SER and TTS training.

``fit`` owns everything that is not the model's math: device and seeding, AMP (CUDA only),
data-parallel training under ``torchrun``, gradient clipping, an EMA of the weights,
checkpoints (``last.pt`` to resume, ``<kind>.pt`` to use, ``best.pt`` by validation score),
early stopping and logging (rich progress, ``train.log``, TensorBoard under ``tb/``).

Exact resume: ``last.pt`` stores the model, EMA, optimizer, AMP scaler, step, the position in
the current epoch and the python/numpy/torch RNG states. A resumed run re-creates the epoch's
batches, skips the ones already consumed, then restores the RNG, so on CPU an interrupted run
of A + B steps ends with the same weights as an uninterrupted one — provided ``batches(epoch)``
is a deterministic function of the epoch (shuffle with a generator seeded by seed + epoch, the
``DistributedSampler.set_epoch`` pattern), which the SER and TTS datasets do.

Data parallel: with ``WORLD_SIZE > 1`` (torchrun) ``fit`` joins the process group (gloo on CPU,
nccl on CUDA), broadcasts rank 0's weights and averages gradients with one all-reduce after each
backward. This is what ``DistributedDataParallel`` does, done explicitly so that ``step_fn`` may
call any model method (``compute_loss``…) and not only ``forward``, which DDP needs to sync.
``batches(epoch)`` shards its data itself: use :func:`dist_info` for the rank and world size.
Only rank 0 logs and writes files.
"""

from __future__ import annotations

import copy
import math
import os
import random
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.distributed as torch_dist
from torch import nn

from .checkpoint import load_checkpoint, save_checkpoint
from .config import save_yaml, to_dict
from .errors import EmomixError
from .progress import ProgressBar, progress_bar


@dataclass
class LoopConfig:
    steps: int = 1000
    batch_size: int = 16
    lr: float = 1e-4
    weight_decay: float = 0.0
    grad_clip: float = 1.0  # 0 = off
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast, CUDA only)
    ema_decay: float = 0.0  # 0 = off
    log_every: int = 50
    ckpt_every: int = 500
    val_every: int = 500
    seed: int = 1234
    num_workers: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    early_stop_patience: int = 0  # validations without improvement; 0 = off
    max_minutes: float = 0.0  # wall-clock budget of this run; 0 = off. Stops cleanly, resumable


@dataclass
class FitResult:
    step: int
    checkpoint: Path  # run_dir/<kind>.pt (final weights, EMA when enabled)
    history: list[dict] = field(default_factory=list)  # one dict per log line / validation
    best: Path | None = None  # run_dir/best.pt when validate gave a score
    best_score: float | None = None
    stopped_early: bool = False


class DistInfo(NamedTuple):
    rank: int
    world_size: int
    local_rank: int


def dist_info() -> DistInfo:
    """Rank, world size and local rank of this process (0, 1, 0 outside torchrun)."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        rank, world = torch_dist.get_rank(), torch_dist.get_world_size()
    else:
        rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    return DistInfo(rank, world, int(os.environ.get("LOCAL_RANK", rank)))


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available (this process's local rank under torchrun), else cpu."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise EmomixError(f"device '{name}' requested but CUDA is not available; use --device cpu")
        if name == "cuda":
            return torch.device("cuda", dist_info().local_rank % torch.cuda.device_count())
    try:
        return torch.device(name)
    except RuntimeError as error:
        raise EmomixError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N") from error


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def git_revision() -> str:
    """The code's git revision (``+dirty`` when modified), or ``unknown``."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here, capture_output=True, text=True, timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (rev + ("+dirty" if dirty else "")) if rev else "unknown"


# ---------------------------------------------------------------- RNG state (weights_only-safe)
def _rng_state() -> dict:
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------- EMA
def ema_decay_at(decay: float, step: int) -> float:
    """The EMA decay used after optimizer step ``step`` (1-based): ``min(decay, (1+step)/(10+step))``.

    Without this warm-up an EMA of 0.999 still holds 0.999^2000 ≈ 14 % of the random
    initialisation after 2000 steps — a blend that is no working network (the first GPU run
    of the demo model sampled pure noise from its EMA weights while the raw weights spoke).
    """
    return min(decay, (1.0 + step) / (10.0 + step))


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema = decay * ema + (1 - decay) * w`` for parameters; buffers are copied."""
    for ema_p, p in zip(ema.parameters(), model.parameters(), strict=True):
        ema_p.mul_(decay).add_(p.detach().to(ema_p.dtype), alpha=1.0 - decay)
    for ema_b, b in zip(ema.buffers(), model.buffers(), strict=True):
        ema_b.copy_(b)


# ---------------------------------------------------------------- distributed helpers
def _average_gradients(params: list[nn.Parameter], world: int) -> None:
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    torch_dist.all_reduce(flat)
    flat /= world
    offset = 0
    for p, g in zip(params, grads, strict=True):
        n = g.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n


def _broadcast_module(module: nn.Module) -> None:
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            torch_dist.broadcast(tensor.data, src=0)


# ---------------------------------------------------------------- logging
class _Logger:
    """Plain ``train.log`` + TensorBoard + a progress bar; silent on ranks > 0."""

    def __init__(self, run_dir: Path, total: int, start: int, active: bool):
        self.active = active
        self.writer = None
        self.handle = None
        self._bar_stack = ExitStack()
        self.bar = ProgressBar()
        if not active:
            return
        self.handle = open(run_dir / "train.log", "a", encoding="utf-8")  # noqa: SIM115
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(run_dir / "tb"))
        except ImportError:  # tensorboard is a dependency, but logging must never kill a run
            self.writer = None
        self.bar = self._bar_stack.enter_context(progress_bar("train", total, completed=start, plain_lines=True))

    def line(self, text: str) -> None:
        if self.handle:
            self.handle.write(time.strftime("%Y-%m-%d %H:%M:%S ") + text + "\n")
            self.handle.flush()

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if self.writer:
            for key, value in values.items():
                self.writer.add_scalar(key, value, step)

    def advance(self, step: int, info: str | None = None) -> None:
        self.bar.update(completed=step, info=info)

    def close(self) -> None:
        self._bar_stack.close()
        if self.writer:
            self.writer.close()
        if self.handle:
            self.handle.close()


def _fmt(values: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.4g}" for k, v in values.items())


class _Window:
    """Sums of the scalar step outputs since the last log line, for their means."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        self.steps = 0
        self.start = time.perf_counter()

    def add(self, outputs: dict[str, torch.Tensor]) -> None:
        for key, value in outputs.items():
            if torch.is_tensor(value) and value.numel() == 1:
                self.sums[key] = self.sums.get(key, 0.0) + value.detach().float()
                self.counts[key] = self.counts.get(key, 0) + 1
        self.steps += 1

    def means(self) -> dict[str, float]:
        """Mean of every output over the steps that returned it (a step may leave a term out,
        e.g. the TTS style loss with ``style_every > 1``), plus ``steps_per_s`` over the window."""
        elapsed = time.perf_counter() - self.start
        means = {k: float(v) / self.counts[k] for k, v in self.sums.items()}
        means["steps_per_s"] = self.steps / max(elapsed, 1e-9)
        return means


# ---------------------------------------------------------------- state and resume
@dataclass
class _State:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of `epoch` already consumed
    best_score: float | None = None
    bad_validations: int = 0


class _Amp:
    """Autocast dtype (CUDA only) and the fp16 gradient scaler."""

    def __init__(self, precision: str, device: torch.device):
        if precision not in ("fp32", "bf16", "fp16"):
            raise EmomixError(f"train.precision must be fp32, bf16 or fp16, got '{precision}'")
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.enabled = self.dtype is not None and device.type == "cuda"
        fp16 = self.enabled and self.dtype == torch.float16
        self.scaler = torch.amp.GradScaler("cuda") if fp16 else None
        self.description = precision if self.enabled or self.dtype is None else "fp32 (AMP is CUDA only)"


def _train_state(model, ema, optimizer, scaler, state: _State, cfg: LoopConfig, kind: str) -> dict:
    return {
        "model": model.state_dict(),
        "ema": ema.state_dict() if ema is not None else None,
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "step": state.step,
        "epoch": state.epoch,
        "batch_in_epoch": state.batch_in_epoch,
        "best_score": state.best_score,
        "bad_validations": state.bad_validations,
        "rng": _rng_state(),
        "cfg": to_dict(cfg),
        "export_kind": kind,
    }


def _restore(path: Path, model, ema, optimizer, scaler, kind: str) -> tuple[_State, dict]:
    blob = load_checkpoint(path, "train-state")
    if blob.get("export_kind") not in (None, kind):
        raise EmomixError(
            f"{path} resumes a '{blob.get('export_kind')}' run, not a '{kind}' run; "
            f"pass the last.pt of a {kind} run"
        )
    try:
        model.load_state_dict(blob["model"])
        if ema is not None:
            ema.load_state_dict(blob["ema"] if blob.get("ema") is not None else blob["model"])
        if blob.get("optimizer") is not None:  # a snapshot (write_snapshot) restarts Adam
            optimizer.load_state_dict(blob["optimizer"])
    except (RuntimeError, ValueError, KeyError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise EmomixError(
            f"cannot resume from {path}: it does not match this model/optimizer ({first}); "
            "resume with the same config that wrote it"
        ) from error
    if scaler is not None and blob.get("scaler"):
        scaler.load_state_dict(blob["scaler"])
    state = _State(
        step=int(blob["step"]), epoch=int(blob["epoch"]), batch_in_epoch=int(blob["batch_in_epoch"]),
        best_score=blob.get("best_score"), bad_validations=int(blob.get("bad_validations", 0)),
    )
    return state, blob["rng"]


def write_snapshot(last: str | Path, dst: str | Path, **extra) -> Path:
    """A compact copy of a run's ``last.pt`` to carry a run across machines: the raw and EMA
    weights in fp16, the step and data position and the RNG states, without the optimizer (a
    run resumed from it restarts Adam with the same step count and schedule). ``extra`` (e.g.
    the series' wall-clock hours) is stored beside them."""
    blob = load_checkpoint(last, "train-state")

    def half(state):
        if state is None:
            return None
        return {k: v.half() if torch.is_tensor(v) and v.is_floating_point() else v
                for k, v in state.items()}

    payload = {k: v for k, v in blob.items() if k not in ("format", "kind", "version")}
    payload.update(model=half(blob["model"]), ema=half(blob.get("ema")), optimizer=None,
                   scaler=None, snapshot=dict(extra))
    return save_checkpoint(dst, "train-state", payload)


def _past_deadline(deadline: float, world_size: int) -> bool:
    """Whether the time budget is spent; under DDP rank 0 decides for every rank."""
    past = time.perf_counter() > deadline
    if world_size == 1:
        return past
    flag = torch.tensor([1.0 if past else 0.0])
    if torch_dist.get_backend() == "nccl":
        flag = flag.cuda()
    torch_dist.broadcast(flag, src=0)
    return bool(flag.item())


# ---------------------------------------------------------------- the loop
class _Fit:
    """One call of :func:`fit`: setup, then its steps as methods over the shared state."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, step_fn, cfg: LoopConfig,
                 run_dir: Path, kind: str, export, validate):  # fmt: skip
        self.model, self.optimizer, self.step_fn, self.cfg = model, optimizer, step_fn, cfg
        self.run_dir, self.kind, self.export, self.validate = run_dir, kind, export, validate
        self.dist = dist_info()
        self.owns_group = False
        if self.dist.world_size > 1 and not torch_dist.is_initialized():
            backend = "nccl" if resolve_device(cfg.device).type == "cuda" else "gloo"
            torch_dist.init_process_group(backend=backend)
            self.owns_group = True
        self.is_main = self.dist.rank == 0
        self.device = resolve_device(cfg.device)
        if self.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            save_yaml(run_dir / "loop.yaml", cfg)

        seed_everything(cfg.seed + self.dist.rank)
        model.to(self.device)
        if self.dist.world_size > 1:
            _broadcast_module(model)
        self.ema = None
        if cfg.ema_decay > 0:
            self.ema = copy.deepcopy(model).eval().requires_grad_(False)
        self.eval_model = self.ema if self.ema is not None else model
        self.amp = _Amp(cfg.precision, self.device)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.state, self.rng = _State(), None  # rng: a resumed run's RNG state, set after skipping
        self.logger = _Logger(run_dir, cfg.steps, 0, False)
        self.result = FitResult(step=0, checkpoint=run_dir / f"{kind}.pt")
        self.window = _Window()
        self.deadline: float | None = None  # set when training starts
        self.stopped = self.timed_out = False

    def resume(self, path: Path) -> None:
        self.state, self.rng = _restore(path, self.model, self.ema, self.optimizer,
                                        self.amp.scaler, self.kind)

    def start_log(self, resume: Path | None) -> None:
        cfg, dist = self.cfg, self.dist
        self.logger = _Logger(self.run_dir, cfg.steps, self.state.step, self.is_main)
        self.logger.line(
            f"start kind={self.kind} step={self.state.step}/{cfg.steps} device={self.device} "
            f"world={dist.world_size} precision={self.amp.description} git={git_revision()} "
            f"params={sum(p.numel() for p in self.params)}"
            + (f" resumed_from={resume}" if resume else "")
        )

    # ---- checkpoints and validation
    def save(self) -> None:
        """``last.pt`` (to resume) and ``<kind>.pt`` (to use), on rank 0."""
        if self.is_main:
            save_checkpoint(self.run_dir / "last.pt", "train-state", _train_state(
                self.model, self.ema, self.optimizer, self.amp.scaler, self.state, self.cfg, self.kind))
            save_checkpoint(self.run_dir / f"{self.kind}.pt", self.kind, self.export(self.eval_model))

    def validation(self) -> bool:
        """Validate on rank 0 (``best.pt`` when the score improved); returns True when early
        stopping says stop (on every rank)."""
        stop = False
        if self.is_main and self.validate is not None:
            metrics = self._validate_metrics()
            improved = self._track_best(metrics)
            state, logger = self.state, self.logger
            self.result.history.append({"step": state.step, **{f"val/{k}": v for k, v in metrics.items()}})
            logger.scalars(state.step, {f"val/{k}": v for k, v in metrics.items()})
            logger.line(f"val step {state.step} {_fmt(metrics)}" + (" (best)" if improved else ""))
            patience = self.cfg.early_stop_patience
            stop = patience > 0 and state.bad_validations >= patience
        if self.dist.world_size > 1:
            flag = torch.tensor([1.0 if stop else 0.0], device=self.device)
            torch_dist.broadcast(flag, src=0)
            stop = bool(flag.item())
        return stop

    def _validate_metrics(self) -> dict[str, float]:
        was_training = self.eval_model.training
        self.eval_model.eval()
        with torch.no_grad():
            metrics = {k: float(v) for k, v in self.validate(self.eval_model, self.state.step).items()}
        self.eval_model.train(was_training)
        return metrics

    def _track_best(self, metrics: dict[str, float]) -> bool:
        """Write ``best.pt`` when ``score`` improved (returns whether it did), else count a bad
        validation for early stopping."""
        state, score = self.state, metrics.get("score")
        if score is None:
            return False
        if state.best_score is not None and score <= state.best_score:
            state.bad_validations += 1
            return False
        state.best_score, state.bad_validations = score, 0
        payload = self.export(self.eval_model)
        payload["fit"] = {"step": state.step, "score": score, "metrics": metrics}
        save_checkpoint(self.run_dir / "best.pt", self.kind, payload)
        return True

    # ---- one step
    def optimizer_step(self, batch) -> dict[str, torch.Tensor]:
        """Forward, backward (gradients averaged across ranks), clip, step, EMA; ``step += 1``."""
        cfg, amp, optimizer = self.cfg, self.amp, self.optimizer
        with torch.autocast(self.device.type, dtype=amp.dtype, enabled=amp.enabled):
            outputs = self.step_fn(self.model, batch, self.device)
        loss = outputs["loss"]
        optimizer.zero_grad(set_to_none=True)
        (amp.scaler.scale(loss) if amp.scaler else loss).backward()
        if self.dist.world_size > 1:
            _average_gradients(self.params, self.dist.world_size)
        if amp.scaler:
            amp.scaler.unscale_(optimizer)
        if cfg.grad_clip > 0:
            outputs = {**outputs, "grad_norm": nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)}
        if amp.scaler:
            amp.scaler.step(optimizer)
            amp.scaler.update()
        else:
            optimizer.step()
        if self.ema is not None:
            ema_update(self.ema, self.model, ema_decay_at(cfg.ema_decay, self.state.step + 1))
        self.state.step += 1
        return outputs

    def log_step(self, outputs: dict[str, torch.Tensor]) -> None:
        """Accumulate the step's outputs; every ``log_every`` steps write their means."""
        self.window.add(outputs)
        step = self.state.step
        if step % max(self.cfg.log_every, 1) != 0 and step != self.cfg.steps:
            self.logger.advance(step)
            return
        means = self.window.means()
        if not math.isfinite(means.get("loss", 0.0)):
            raise EmomixError(
                f"training loss became {means['loss']} at step {step}; "
                "lower train.lr or use train.precision=fp32"
            )
        means["lr"] = self.optimizer.param_groups[0]["lr"]
        self.result.history.append({"step": step, **means})
        self.logger.scalars(step, {f"train/{k}": v for k, v in means.items()})
        self.logger.line(f"step {step} {_fmt(means)}")
        loss = f"loss {means.get('loss', 0):.4f}"
        self.logger.advance(step, f"{loss} {means['steps_per_s']:.2f} it/s")
        budget = None if self.deadline is None else self.deadline - time.perf_counter()
        self.logger.bar.line(step, loss, means["steps_per_s"], budget)  # off a terminal only
        self.window.reset()

    def periodic(self) -> bool:
        """Validation, checkpoints, early stopping and the time budget after a step; True = stop."""
        cfg, state = self.cfg, self.state
        stop = False
        if self.validate is not None and cfg.val_every > 0 and state.step % cfg.val_every == 0:
            stop = self.validation()
        if cfg.ckpt_every > 0 and state.step % cfg.ckpt_every == 0:
            self.save()
        if stop:
            self.logger.line(
                f"early stop at step {state.step}: no better score in "
                f"{cfg.early_stop_patience} validations (best {state.best_score})"
            )
        if self.deadline is not None and not stop and _past_deadline(self.deadline, self.dist.world_size):
            self.timed_out = stop = True
            self.logger.line(
                f"time budget of {cfg.max_minutes} min reached at step {state.step}; "
                f"continue with --resume {self.run_dir / 'last.pt'}"
            )
        return stop

    # ---- epochs
    def epoch_batches(self, batches: Callable[[int], Iterable]) -> tuple[Iterator, int]:
        """The current epoch's batch iterator, past the batches a resumed run already consumed
        (and their count). A resumed run's RNG is restored after skipping, so the data
        pipeline's draws while skipping don't shift it."""
        iterator = iter(batches(self.state.epoch))
        skipped = 0
        while skipped < self.state.batch_in_epoch and next(iterator, None) is not None:
            skipped += 1
        if self.rng is not None:
            _set_rng_state(self.rng)
            if self.dist.rank > 0:
                seed_everything(self.cfg.seed + self.dist.rank + self.state.step)
            self.rng = None
        return iterator, skipped

    def train(self, batches: Callable[[int], Iterable]) -> None:
        """Steps until ``cfg.steps``, early stopping or the time budget."""
        cfg = self.cfg
        self.deadline = time.perf_counter() + 60.0 * cfg.max_minutes if cfg.max_minutes > 0 else None
        self.window.reset()
        self.model.train()
        while self.state.step < self.cfg.steps and not self.stopped:
            iterator, n_batches = self.epoch_batches(batches)
            for batch in iterator:
                outputs = self.optimizer_step(batch)
                n_batches += 1
                self.state.batch_in_epoch = n_batches
                self.log_step(outputs)
                self.stopped = self.periodic()
                if self.stopped or self.state.step >= self.cfg.steps:
                    break  # before fetching another batch, so a resume sees the same stream
            else:
                if n_batches == 0:
                    raise EmomixError(
                        "no training batches in an epoch: the train split is empty or smaller "
                        "than train.batch_size; add data or lower train.batch_size"
                    )
                self.state.epoch += 1
                self.state.batch_in_epoch = 0

    def finish(self) -> FitResult:
        """A last validation (unless early stopping ended the run), the final checkpoints."""
        cfg, state = self.cfg, self.state
        validated_now = cfg.val_every > 0 and state.step % cfg.val_every == 0
        if self.validate is not None and (self.timed_out or not self.stopped) and not validated_now:
            self.validation()
        self.save()
        self.logger.line(f"done step {state.step} checkpoint {self.result.checkpoint}")
        self.result.step = state.step
        self.result.stopped_early = self.stopped and not self.timed_out
        self.result.best_score = state.best_score
        self.result.best = self.run_dir / "best.pt" if state.best_score is not None else None
        return self.result

    def close(self) -> None:
        self.logger.close()
        if self.owns_group:
            torch_dist.destroy_process_group()


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Callable[[int], Iterable],
    step_fn: Callable[[nn.Module, Any, torch.device], dict[str, torch.Tensor]],
    cfg: LoopConfig,
    run_dir: Path,
    kind: str,
    export: Callable[[nn.Module], dict],
    validate: Callable[[nn.Module, int], dict[str, float]] | None = None,
    resume: Path | None = None,
) -> FitResult:
    """Train ``model`` for ``cfg.steps`` optimizer steps; see the module docstring.

    ``batches(epoch)`` yields the epoch's batches (sharded by the caller under DDP);
    ``step_fn(model, batch, device)`` returns a dict with ``loss`` (other entries are logged);
    ``export(model)`` gives the payload of ``run_dir/<kind>.pt`` from the EMA model (or the model);
    ``validate(model, step)`` returns metrics, ``score`` (higher = better) drives ``best.pt``
    and early stopping. The caller saves its own full config in ``run_dir``; ``fit`` writes
    ``run_dir/loop.yaml``.
    """
    run = _Fit(model, optimizer, step_fn, cfg, Path(run_dir), kind, export, validate)
    if resume is not None:
        run.resume(Path(resume))
    run.start_log(resume)
    try:
        run.train(batches)
        return run.finish()
    finally:
        run.close()
