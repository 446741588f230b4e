"""train_loop.fit: fitting, exact resume, EMA math, checkpoint kinds, early stopping, DDP."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
from torch import nn

from emomix_cli.checkpoint import load_checkpoint
from emomix_cli.errors import EmomixError
from emomix_cli.train_loop import LoopConfig, dist_info, fit, resolve_device, seed_everything

X = torch.linspace(-1, 1, 24).unsqueeze(1)
Y = 3 * X + 1


def make_batches(batch_size: int = 4, shard: bool = False):
    """Deterministic per epoch (generator seeded by the epoch), sharded by rank when asked."""

    def batches(epoch: int):
        order = torch.randperm(len(X), generator=torch.Generator().manual_seed(epoch))
        if shard:
            rank, world, _ = dist_info()
            order = order[rank::world]
        for i in range(0, len(order) - batch_size + 1, batch_size):
            idx = order[i : i + batch_size]
            yield X[idx], Y[idx]

    return batches


def mse_step(model, batch, device):
    x, y = (t.to(device) for t in batch)
    # noise from the global RNG: resume must restore it to reproduce the run
    x = x + 0.01 * torch.randn_like(x)
    return {"loss": ((model(x) - y) ** 2).mean()}


class DropoutLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(1, 8)
        self.drop = nn.Dropout(0.2)
        self.out = nn.Linear(8, 1)

    def forward(self, x):
        return self.out(self.drop(torch.tanh(self.hidden(x))))


def export_state(model):
    return {"state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}


def cfg(**kw) -> LoopConfig:
    base = dict(steps=10, lr=0.05, log_every=5, ckpt_every=0, val_every=0, seed=0, device="cpu")
    base.update(kw)
    return LoopConfig(**base)


def test_tiny_linear_model_fits_and_writes_its_files(tmp_path):
    seed_everything(0)
    model = nn.Linear(1, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    result = fit(model, opt, make_batches(), mse_step, cfg(steps=200, log_every=50), tmp_path, "lin",
                 export_state)
    assert result.step == 200
    assert result.history[-1]["loss"] < 1e-2 < result.history[0]["loss"]
    assert abs(model.weight.item() - 3) < 0.1 and abs(model.bias.item() - 1) < 0.1
    assert result.checkpoint == tmp_path / "lin.pt"
    assert load_checkpoint(tmp_path / "last.pt", "train-state")["step"] == 200
    assert "state_dict" in load_checkpoint(tmp_path / "lin.pt", "lin")
    log = (tmp_path / "train.log").read_text()
    assert "git=" in log and "step 200 loss" in log and "steps_per_s" in log
    assert any((tmp_path / "tb").iterdir())
    assert (tmp_path / "loop.yaml").is_file()


@pytest.mark.parametrize("first_steps", [3, 6])  # mid-epoch and at an epoch boundary
def test_resumed_run_equals_uninterrupted_run(tmp_path, first_steps):
    def run(run_dir, steps, resume=None, init=None):
        seed_everything(0)
        model = DropoutLinear()
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        res = fit(model, opt, make_batches(), mse_step, cfg(steps=steps, ema_decay=0.9, log_every=2),
                  run_dir, "lin", export_state, resume=resume)
        return model, res

    full, full_res = run(tmp_path / "full", 14)
    run(tmp_path / "part", first_steps)
    resumed, resumed_res = run(tmp_path / "part", 14, resume=tmp_path / "part" / "last.pt")
    assert resumed_res.step == full_res.step == 14
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    ema_full = load_checkpoint(tmp_path / "full" / "lin.pt", "lin")["state_dict"]
    ema_resumed = load_checkpoint(tmp_path / "part" / "lin.pt", "lin")["state_dict"]
    for key in ema_full:
        assert torch.equal(ema_full[key], ema_resumed[key])


def test_ema_after_one_step_is_decay_times_old_plus_rest_times_new(tmp_path):
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(2.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    batch = (torch.tensor([[1.0]]), torch.tensor([[0.0]]))

    def step_fn(m, b, device):
        return {"loss": ((m(b[0]) - b[1]) ** 2).mean()}  # d/dw = 2 * w * x^2 = 4 at w=2

    exported = {}

    def export(m):
        exported["w"] = m.weight.item()
        return {}

    fit(model, opt, lambda epoch: [batch], step_fn, cfg(steps=1, ema_decay=0.75, grad_clip=0),
        tmp_path, "lin", export)
    assert model.weight.item() == pytest.approx(2.0 - 0.5 * 4.0)  # w1 = 0
    decay = min(0.75, 2 / 11)  # warm-up: (1 + step) / (10 + step) at step 1
    assert exported["w"] == pytest.approx(decay * 2.0 + (1 - decay) * 0.0)


def test_ema_warm_up_forgets_the_initialisation():
    from emomix_cli.train_loop import ema_decay_at

    assert ema_decay_at(0.999, 1) == pytest.approx(2 / 11)
    assert ema_decay_at(0.999, 10_000) == 0.999
    remaining = 1.0
    for step in range(1, 2001):
        remaining *= ema_decay_at(0.999, step)
    assert remaining < 1e-3  # vs 0.999**2000 ≈ 0.135 without warm-up


def test_ema_update_needs_no_autograd_context():
    """Called from the loop with grad mode on, on an EMA copy whose weights may require grad."""
    from emomix_cli.train_loop import ema_update

    model, ema = nn.Linear(2, 1), nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(1.0)
        ema.weight.fill_(3.0)
    assert ema.weight.requires_grad and torch.is_grad_enabled()
    ema_update(ema, model, 0.25)
    assert torch.allclose(ema.weight, torch.full_like(ema.weight, 0.25 * 3.0 + 0.75 * 1.0))
    assert ema.weight.grad_fn is None


def test_checkpoints_have_their_kinds_and_wrong_kinds_are_rejected(tmp_path):
    model = nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    fit(model, opt, make_batches(), mse_step, cfg(steps=4, ckpt_every=2), tmp_path, "ser", export_state)
    assert load_checkpoint(tmp_path / "last.pt", "train-state")["export_kind"] == "ser"
    load_checkpoint(tmp_path / "ser.pt", "ser")
    with pytest.raises(EmomixError, match="'train-state' checkpoint"):
        load_checkpoint(tmp_path / "last.pt", "ser")
    with pytest.raises(EmomixError, match="'ser' checkpoint"):
        fit(model, opt, make_batches(), mse_step, cfg(steps=6), tmp_path, "ser", export_state,
            resume=tmp_path / "ser.pt")
    other = nn.Linear(2, 1)
    with pytest.raises(EmomixError, match="does not match") as caught:
        fit(other, torch.optim.SGD(other.parameters(), lr=0.1), make_batches(), mse_step,
            cfg(steps=6), tmp_path / "b", "ser", export_state, resume=tmp_path / "last.pt")
    assert isinstance(caught.value.__cause__, RuntimeError)  # the size mismatch, for --verbose


def test_best_checkpoint_and_early_stopping_follow_validation_score(tmp_path):
    scores = iter([0.5, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    seen = []

    def validate(m, step):
        assert not m.training
        seen.append(step)
        return {"score": next(scores)}

    model = nn.Linear(1, 1)
    res = fit(model, torch.optim.SGD(model.parameters(), lr=0.1), make_batches(), mse_step,
              cfg(steps=100, val_every=2, early_stop_patience=2), tmp_path, "lin", export_state,
              validate=validate)
    assert seen == [2, 4, 6, 8]
    assert res.stopped_early and res.step == 8
    assert res.best_score == 0.9
    best = load_checkpoint(res.best, "lin")
    assert best["fit"]["step"] == 4 and best["fit"]["score"] == 0.9


def test_an_epoch_without_batches_is_a_user_error(tmp_path):
    model = nn.Linear(1, 1)
    with pytest.raises(EmomixError, match="batch_size"):
        fit(model, torch.optim.SGD(model.parameters(), lr=0.1), lambda epoch: [], mse_step, cfg(),
            tmp_path, "lin", export_state)


def test_resolve_device_auto_and_unavailable_cuda():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(EmomixError, match="--device cpu"):
            resolve_device("cuda")


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    torch.manual_seed(rank)  # different inits: fit must broadcast rank 0's weights
    model = nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    res = fit(model, opt, make_batches(batch_size=3, shard=True), mse_step, cfg(steps=6, log_every=3),
              Path(out), "lin", export_state)
    torch.save({"step": res.step, "weight": model.weight.detach().clone()}, Path(out) / f"rank{rank}.pt")


@pytest.mark.slow  # ~30 s: two processes start torch and gloo
def test_two_process_ddp_on_cpu_keeps_ranks_in_sync(tmp_path):
    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert r0["step"] == r1["step"] == 6
    assert torch.equal(r0["weight"], r1["weight"])
    assert load_checkpoint(tmp_path / "last.pt", "train-state")["step"] == 6
    assert "world=2" in (tmp_path / "train.log").read_text()


def test_time_budget_stops_cleanly_and_resume_finishes_the_run(tmp_path):
    seed_everything(0)
    model = nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    first = fit(model, opt, make_batches(), mse_step, cfg(steps=50, max_minutes=1e-9), tmp_path, "lin",
                export_state)
    assert first.step == 1 and not first.stopped_early
    assert load_checkpoint(tmp_path / "last.pt", "train-state")["step"] == 1
    assert "time budget" in (tmp_path / "train.log").read_text()
    model2 = nn.Linear(1, 1)
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.05)
    second = fit(model2, opt2, make_batches(), mse_step, cfg(steps=50), tmp_path, "lin", export_state,
                 resume=tmp_path / "last.pt")
    assert second.step == 50


def test_training_off_a_terminal_logs_a_plain_line_every_log_every_steps(tmp_path, capsys):
    seed_everything(0)
    model = nn.Linear(1, 1)
    fit(model, torch.optim.SGD(model.parameters(), lr=0.05), make_batches(), mse_step,
        cfg(steps=10, log_every=5), tmp_path, "lin", export_state)
    lines = capsys.readouterr().err.splitlines()  # pytest's stderr is not a terminal, like nohup's log
    assert [line.split(" loss ")[0] for line in lines] == ["train 5/10", "train 10/10"]
    assert all(" steps/s ETA " in line for line in lines) and lines[-1].endswith("ETA 0:00:00")
