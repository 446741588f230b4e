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
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
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
    import os

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
    except RuntimeError:
        raise EmomixError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N") from None


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
@torch.no_grad()
def ema_decay_at(decay: float, step: int) -> float:
    """The EMA decay used after optimizer step ``step`` (1-based): ``min(decay, (1+step)/(10+step))``.

    Without this warm-up an EMA of 0.999 still holds 0.999^2000 ≈ 14 % of the random
    initialisation after 2000 steps — a blend that is no working network (the first GPU run
    of the demo model sampled pure noise from its EMA weights while the raw weights spoke).
    """
    return min(decay, (1.0 + step) / (10.0 + step))


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
    """Plain ``train.log`` + TensorBoard + rich progress; silent on ranks > 0."""

    def __init__(self, run_dir: Path, total: int, start: int, active: bool):
        self.active = active
        self.progress = None
        self.writer = None
        self.handle = None
        if not active:
            return
        self.handle = open(run_dir / "train.log", "a", encoding="utf-8")  # noqa: SIM115
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(run_dir / "tb"))
        except ImportError:  # tensorboard is a dependency, but logging must never kill a run
            self.writer = None
        if sys.stderr.isatty():
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("[bold]train"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                TextColumn("{task.fields[info]}"), TimeRemainingColumn(), transient=False,
            )
            self.progress.start()
            self.task = self.progress.add_task("train", total=total, completed=start, info="")

    def line(self, text: str) -> None:
        if self.handle:
            self.handle.write(time.strftime("%Y-%m-%d %H:%M:%S ") + text + "\n")
            self.handle.flush()

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if self.writer:
            for key, value in values.items():
                self.writer.add_scalar(key, value, step)

    def advance(self, step: int, info: str | None = None) -> None:
        if self.progress:
            if info is None:
                self.progress.update(self.task, completed=step)
            else:
                self.progress.update(self.task, completed=step, info=info)

    def close(self) -> None:
        if self.progress:
            self.progress.stop()
        if self.writer:
            self.writer.close()
        if self.handle:
            self.handle.close()


def _fmt(values: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.4g}" for k, v in values.items())


# ---------------------------------------------------------------- the loop
@dataclass
class _State:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of `epoch` already consumed
    best_score: float | None = None
    bad_validations: int = 0


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
        optimizer.load_state_dict(blob["optimizer"])
    except (RuntimeError, ValueError, KeyError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise EmomixError(
            f"cannot resume from {path}: it does not match this model/optimizer ({first}); "
            "resume with the same config that wrote it"
        ) from None
    if scaler is not None and blob.get("scaler"):
        scaler.load_state_dict(blob["scaler"])
    state = _State(
        step=int(blob["step"]), epoch=int(blob["epoch"]), batch_in_epoch=int(blob["batch_in_epoch"]),
        best_score=blob.get("best_score"), bad_validations=int(blob.get("bad_validations", 0)),
    )
    return state, blob["rng"]


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
    run_dir = Path(run_dir)
    info = dist_info()
    owns_group = False
    if info.world_size > 1 and not torch_dist.is_initialized():
        backend = "nccl" if resolve_device(cfg.device).type == "cuda" else "gloo"
        torch_dist.init_process_group(backend=backend)
        owns_group = True
    is_main = info.rank == 0
    device = resolve_device(cfg.device)
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_yaml(run_dir / "loop.yaml", cfg)

    seed_everything(cfg.seed + info.rank)
    model.to(device)
    if info.world_size > 1:
        _broadcast_module(model)
    ema = None
    if cfg.ema_decay > 0:
        ema = copy.deepcopy(model).eval()
        for p in ema.parameters():
            p.requires_grad_(False)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.precision)
    if cfg.precision not in ("fp32", "bf16", "fp16"):
        raise EmomixError(f"train.precision must be fp32, bf16 or fp16, got '{cfg.precision}'")
    use_amp = amp_dtype is not None and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if use_amp and amp_dtype == torch.float16 else None

    state, rng = _State(), None
    if resume is not None:
        state, rng = _restore(Path(resume), model, ema, optimizer, scaler, kind)
    params = [p for p in model.parameters() if p.requires_grad]
    eval_model = ema if ema is not None else model

    logger = _Logger(run_dir, cfg.steps, state.step, is_main)
    logger.line(
        f"start kind={kind} step={state.step}/{cfg.steps} device={device} world={info.world_size} "
        f"precision={cfg.precision if use_amp or amp_dtype is None else 'fp32 (AMP is CUDA only)'} "
        f"git={git_revision()} params={sum(p.numel() for p in params)}"
        + (f" resumed_from={resume}" if resume else "")
    )
    result = FitResult(step=state.step, checkpoint=run_dir / f"{kind}.pt")

    def save_all() -> None:
        if is_main:
            save_checkpoint(run_dir / "last.pt", "train-state",
                            _train_state(model, ema, optimizer, scaler, state, cfg, kind))
            save_checkpoint(run_dir / f"{kind}.pt", kind, export(eval_model))

    def run_validation() -> bool:
        """Validate on rank 0; returns True when early stopping says stop (on every rank)."""
        stop = False
        if is_main and validate is not None:
            was_training = eval_model.training
            eval_model.eval()
            with torch.no_grad():
                metrics = {k: float(v) for k, v in validate(eval_model, state.step).items()}
            eval_model.train(was_training)
            score = metrics.get("score")
            improved = score is not None and (state.best_score is None or score > state.best_score)
            if improved:
                state.best_score, state.bad_validations = score, 0
                payload = export(eval_model)
                payload["fit"] = {"step": state.step, "score": score, "metrics": metrics}
                save_checkpoint(run_dir / "best.pt", kind, payload)
            elif score is not None:
                state.bad_validations += 1
            result.history.append({"step": state.step, **{f"val/{k}": v for k, v in metrics.items()}})
            logger.scalars(state.step, {f"val/{k}": v for k, v in metrics.items()})
            logger.line(f"val step {state.step} {_fmt(metrics)}" + (" (best)" if improved else ""))
            patience = cfg.early_stop_patience
            stop = patience > 0 and state.bad_validations >= patience
        if info.world_size > 1:
            flag = torch.tensor([1.0 if stop else 0.0], device=device)
            torch_dist.broadcast(flag, src=0)
            stop = bool(flag.item())
        return stop

    window: dict[str, torch.Tensor] = {}
    window_steps, window_start = 0, time.perf_counter()
    deadline = time.perf_counter() + 60.0 * cfg.max_minutes if cfg.max_minutes > 0 else None
    stopped = timed_out = False
    model.train()
    try:
        while state.step < cfg.steps and not stopped:
            iterator = iter(batches(state.epoch))
            skipped = 0
            while skipped < state.batch_in_epoch and next(iterator, None) is not None:
                skipped += 1
            if rng is not None:  # after skipping, so the data pipeline's draws don't shift it
                _set_rng_state(rng)
                if info.rank > 0:
                    seed_everything(cfg.seed + info.rank + state.step)
                rng = None
            n_batches = skipped
            for batch in iterator:
                with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                    outputs = step_fn(model, batch, device)
                loss = outputs["loss"]
                optimizer.zero_grad(set_to_none=True)
                (scaler.scale(loss) if scaler else loss).backward()
                if info.world_size > 1:
                    _average_gradients(params, info.world_size)
                if scaler:
                    scaler.unscale_(optimizer)
                if cfg.grad_clip > 0:
                    grad_norm = nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                    outputs = {**outputs, "grad_norm": grad_norm}
                if scaler:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                if ema is not None:
                    ema_update(ema, model, ema_decay_at(cfg.ema_decay, state.step + 1))
                state.step += 1
                n_batches += 1
                state.batch_in_epoch = n_batches
                for key, value in outputs.items():
                    if torch.is_tensor(value) and value.numel() == 1:
                        window[key] = window.get(key, 0.0) + value.detach().float()
                window_steps += 1

                if state.step % max(cfg.log_every, 1) == 0 or state.step == cfg.steps:
                    elapsed = time.perf_counter() - window_start
                    means = {k: float(v) / window_steps for k, v in window.items()}
                    if not math.isfinite(means.get("loss", 0.0)):
                        raise EmomixError(
                            f"training loss became {means['loss']} at step {state.step}; "
                            "lower train.lr or use train.precision=fp32"
                        )
                    means["steps_per_s"] = window_steps / max(elapsed, 1e-9)
                    means["lr"] = optimizer.param_groups[0]["lr"]
                    result.history.append({"step": state.step, **means})
                    logger.scalars(state.step, {f"train/{k}": v for k, v in means.items()})
                    logger.line(f"step {state.step} {_fmt(means)}")
                    logger.advance(state.step, f"loss {means.get('loss', 0):.4f} {means['steps_per_s']:.2f} it/s")
                    window, window_steps, window_start = {}, 0, time.perf_counter()
                else:
                    logger.advance(state.step)
                if validate is not None and cfg.val_every > 0 and state.step % cfg.val_every == 0:
                    stopped = run_validation()
                if cfg.ckpt_every > 0 and state.step % cfg.ckpt_every == 0:
                    save_all()
                if stopped:
                    logger.line(
                        f"early stop at step {state.step}: no better score in "
                        f"{cfg.early_stop_patience} validations (best {state.best_score})"
                    )
                if deadline is not None and not stopped and _past_deadline(deadline, info.world_size):
                    timed_out = stopped = True
                    logger.line(
                        f"time budget of {cfg.max_minutes} min reached at step {state.step}; "
                        f"continue with --resume {run_dir / 'last.pt'}"
                    )
                if stopped or state.step >= cfg.steps:
                    break  # before fetching another batch, so a resume sees the same stream
            else:
                if n_batches == 0:
                    raise EmomixError(
                        "no training batches in an epoch: the train split is empty or smaller "
                        "than train.batch_size; add data or lower train.batch_size"
                    )
                state.epoch += 1
                state.batch_in_epoch = 0
        validated_now = cfg.val_every > 0 and state.step % cfg.val_every == 0
        if validate is not None and (timed_out or not stopped) and not validated_now:
            run_validation()
        save_all()
        logger.line(f"done step {state.step} checkpoint {result.checkpoint}")
    finally:
        logger.close()
        if owns_group:
            torch_dist.destroy_process_group()
    result.step = state.step
    result.stopped_early = stopped and not timed_out
    result.best_score = state.best_score
    result.best = run_dir / "best.pt" if state.best_score is not None else None
    return result
