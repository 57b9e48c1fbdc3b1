"""Progressive-GAN training: schedule, growing, exact resume, DDP sync, CLI. Tiny models only."""
from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from PIL import Image
from torch.overrides import TorchFunctionMode

from generators.model import PGAN
from generators.pgan import PGANConfig
from generators.step_graph import StepGraph
from generators.train import IterableStream, Trainer
from generators.train_config import TrainConfig, budget_factor, final_scale_only, plan_for_minutes, rescale_remaining
from generators.train_losses import discriminator_loss, generator_loss, gradient_penalty, r1_penalty
from generators.train_run import plan, train
from studio.data import TensorStream
from studio.testing import free_port



pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


MODEL = PGANConfig(latent_dim=8, depths=(16, 16, 8), channels=1)  # 16x16


def tiny_config(**kw) -> TrainConfig:
    base = dict(batch_sizes=(8, 8, 8), fade_images=(0, 24, 16), stable_images=(16, 16, 16), seed=3)
    return TrainConfig(MODEL, **{**base, **kw})


def stream(seed: int = 0, rank: int = 0, world: int = 1) -> TensorStream:
    images = (torch.rand(40, 1, 16, 16, generator=torch.Generator().manual_seed(5)) * 255).to(torch.uint8)
    return TensorStream(images, seed=seed, rank=rank, world_size=world)


def test_schedule_and_validation() -> None:
    cfg = tiny_config()
    assert [(p.resolution, p.kind, p.images) for p in cfg.phases()] == [
        (4, "stable", 16), (8, "fade", 24), (8, "stable", 16), (16, "fade", 16), (16, "stable", 16)]
    assert cfg.total_images == 88
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="multiples of 4"):
        tiny_config(batch_sizes=(6, 8, 8))
    with pytest.raises(ValueError, match="fade_images\\[0\\]"):
        tiny_config(fade_images=(8, 8, 8))
    with pytest.raises(ValueError, match="one entry per scale"):
        tiny_config(stable_images=(8, 8))
    with pytest.raises(ValueError, match="train config has unknown keys"):
        TrainConfig.from_dict({**cfg.to_dict(), "typo": 1})
    planned = plan_for_minutes(cfg, 1.0, [100.0, 50.0, 10.0], time_shares=(0.2, 0.3, 0.5))
    assert planned.stable_images[0] == 1200 and planned.fade_images[2] == 144  # half of 300, whole batches
    assert all(v % 8 == 0 for v in planned.fade_images + planned.stable_images)
    rescaled, at = rescale_remaining(planned, 3, 0.5)
    assert rescaled.fade_images[:2] == planned.fade_images[:2] and rescaled.fade_images[2] == 72 and at == 0
    midway, at = rescale_remaining(planned, 3, 2.0, img_in_phase=72)  # half-way through the fade
    assert midway.fade_images[2] == 288 and at == 144  # alpha stays 0.5


def test_ema_half_life_is_counted_in_images() -> None:
    assert tiny_config().ema_beta(64) == 0.999  # the reference: per step, whatever the batch
    cfg = tiny_config(ema_half_life=2000)
    assert cfg.ema_beta(16) ** (2000 / 16) == pytest.approx(0.5)
    assert cfg.ema_beta(64) ** (2000 / 64) == pytest.approx(0.5)


def test_training_grows_fades_and_exports(tmp_path: Path) -> None:
    seen = []
    model = train(tiny_config(), stream(), out_dir=tmp_path / "run", progress=False, log=print,
                  on_phase_end=lambda t, ph, imgs: seen.append((ph.resolution, ph.kind, tuple(imgs.shape))))
    assert seen == [(4, "stable", (36, 1, 4, 4)), (8, "fade", (36, 1, 8, 8)), (8, "stable", (36, 1, 8, 8)),
                    (16, "fade", (36, 1, 16, 16)), (16, "stable", (36, 1, 16, 16))]
    assert isinstance(model, PGAN) and model.generator.alpha == 0.0
    loaded = PGAN.load(tmp_path / "run" / "final.safetensors")
    z = loaded.sample_latents(4, seed=0)
    assert torch.isfinite(loaded.generate(z)).all() and loaded.realism(loaded.generate(z)).shape == (4,)
    assert loaded.info["training"]["images"] == 88
    with pytest.raises(ValueError, match="--resume"):
        train(tiny_config(), stream(), out_dir=tmp_path / "run", progress=False, log=lambda _: None)


def test_alpha_fades_linearly_and_growing_keeps_lower_scales() -> None:
    t = Trainer(tiny_config(), stream(), progress=False)
    t.train_step(), t.train_step()  # 4x4 stable done (16 images)
    t.run(max_steps=1)  # moves into the 8x8 fade
    w4 = t.g.scale0.weight.detach().clone()
    assert t.phase.kind == "fade" and t.g.alpha == 1.0
    assert t.d.penalty_relu  # the grown discriminator skips the penalty's zero derivatives too
    t.train_step()
    assert t.alpha == pytest.approx(1 - 8 / 24) and t.d.alpha == t.g.alpha == t.g_ema.alpha
    assert not torch.equal(t.g.scale0.weight, w4)  # lower scales keep training
    assert t.g.to_rgb[0].weight.requires_grad and t.d.from_rgb[0].weight.requires_grad  # 4x4 path in use
    t.run(max_steps=2)  # the fade ends: the 4x4 RGB layers leave the forward path and freeze
    assert t.phase.kind == "stable" and t.alpha == 0.0
    assert not t.g.to_rgb[0].weight.requires_grad and t.g.to_rgb[1].weight.requires_grad


def test_budget_replan_resizes_what_is_left() -> None:
    t = Trainer(tiny_config(), stream(), progress=False)
    t.run(max_steps=1)
    # 8 images at 4x4 took 40 s: 0.2 img/s, half the measured 0.4, so unseen scales are assumed
    # at half their measured speed too; time needed for the rest: 8/0.2 + 40/0.1 + 32/0.05 = 1080 s
    t.budget = {"seconds": 40.0 + 2 * 1080.0, "speeds": [0.4, 0.2, 0.1]}
    t.elapsed = 40.0
    t._replan()  # twice that time is left: twice the images, and the current phase stays half done
    assert t.config.fade_images == (0, 48, 32) and t.config.stable_images == (32, 32, 32)
    assert t.img_in_phase == 16 and t.budget["observed"][0] == [8, 40.0]


def test_budget_factor_books_the_time_and_clips() -> None:
    budget = {"seconds": 100.0, "speeds": [10.0, 5.0]}
    # 100 images at scale 0 in 10 s: as measured (k = 1), so scale 1 is assumed at its 5 img/s:
    # 250 images need 50 s, and 50 s are left
    assert budget_factor(budget, scale=0, seconds=10.0, images=100, remaining=[(1, 250)], elapsed=50.0) == 1.0
    assert budget["observed"] == [[100, 10.0], [0, 0.0]]
    assert budget_factor(budget, scale=0, seconds=0.0, images=0, remaining=[(1, 10)], elapsed=50.0) == 4.0
    assert budget_factor(budget, scale=1, seconds=0.0, images=0, remaining=[(1, 10)], elapsed=100.0) == 0.25


def test_losses_on_hand_computed_cases() -> None:
    d_real, d_fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 2.0])
    assert discriminator_loss("wgan-gp", d_real, d_fake, drift=0.001).item() == pytest.approx(1 - 2 + 0.005)
    softplus = lambda v: math.log1p(math.exp(v))  # noqa: E731
    assert discriminator_loss("logistic", d_real, d_fake, drift=0.001).item() == pytest.approx(
        (softplus(0) + softplus(2) + softplus(-1) + softplus(-3)) / 2)
    assert generator_loss("wgan-gp", d_fake).item() == -1.0
    assert generator_loss("logistic", d_fake).item() == pytest.approx((softplus(0) + softplus(-2)) / 2)
    # a linear critic <w, x>: its gradient is w everywhere, |w| = 3
    w = torch.tensor([2.0, 1.0, 2.0]).view(1, 3, 1, 1)
    critic = lambda x: (w * x).flatten(1).sum(1)  # noqa: E731
    real, fake = torch.rand(4, 3, 1, 1), torch.rand(4, 3, 1, 1)
    assert gradient_penalty(critic, real, fake, torch.rand(4, 1, 1, 1)).item() == pytest.approx((3 - 1) ** 2)
    assert r1_penalty(critic, real).item() == pytest.approx(9.0)
    assert not real.requires_grad  # the caller's images are left alone


def _flat(t: Trainer) -> dict[str, torch.Tensor]:
    out = {f"g.{k}": v for k, v in t.g.state_dict().items()}
    out.update({f"d.{k}": v for k, v in t.d.state_dict().items()})
    out.update({f"ema.{k}": v for k, v in t.g_ema.state_dict().items()})
    return out


def test_resume_continues_exactly(tmp_path: Path) -> None:
    torch.manual_seed(0)
    straight = Trainer(tiny_config(), stream(), progress=False)
    straight.run(max_steps=9)  # through 4x4, the 8x8 fade and into 8x8 stable
    first = Trainer(tiny_config(), stream(), out_dir=tmp_path, progress=False)
    first.run(max_steps=4)  # stops mid fade, writes the checkpoint
    assert first.phase.kind == "fade" and 0 < first.alpha < 1
    second = Trainer(tiny_config(), stream(), out_dir=tmp_path, progress=False)
    torch.manual_seed(123)  # the global RNG state is restored from the checkpoint
    second.load_checkpoint()
    assert second.alpha == first.alpha and second.images_seen == first.images_seen
    second.run(max_steps=5)
    assert second.step == straight.step and second.images_seen == straight.images_seen
    a, b = _flat(straight), _flat(second)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    for sa, sb in zip(straight.opt_d.state.values(), second.opt_d.state.values()):
        assert torch.equal(sa["exp_avg_sq"], sb["exp_avg_sq"])


def test_graph_step_matches_the_plain_step() -> None:
    """The CUDA-graph step (`generators.step_graph`) on a CPU: its static buffers and tensor alpha,
    run eagerly, must train exactly like the plain step through a fade and two growths."""
    # direct convolutions, as on a GPU (Winograd's rounding differs by ~1e-5 and GAN steps amplify it)
    plain = Trainer(tiny_config(), stream(), progress=False, winograd=False)
    graphed = Trainer(tiny_config(), stream(), progress=False, cuda_graphs=True, winograd=False)
    assert not plain.cuda_graphs  # off by default on a CPU
    plain.run(max_steps=4), graphed.run(max_steps=4)  # 4x4 stable, then into the 8x8 fade
    graphed_in_fade = graphed.phase.kind == "fade" and isinstance(graphed.g.alpha, torch.Tensor)
    assert graphed_in_fade and graphed.g.alpha is graphed.d.alpha  # filled in per step: the last step's
    assert float(graphed.g.alpha) == pytest.approx(plain.g.alpha) and 0 < plain.g.alpha < 1
    assert isinstance(graphed.g_ema.alpha, float)  # the sample grids use the EMA eagerly
    plain.run(max_steps=7), graphed.run(max_steps=7)
    assert plain.scale == graphed.scale == 2 and plain.step == graphed.step == 11
    a, b = _flat(plain), _flat(graphed)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)
    with pytest.raises(ValueError, match="single process and the penalty on every step"):
        Trainer(tiny_config(gp_every=2), stream(), progress=False, cuda_graphs=True)


class _NoHostReads(TorchFunctionMode):
    """Fails on any read of a tensor's value into Python: in a CUDA graph capture such a read is an
    error (the values do not exist yet), and a branch on one would be frozen into the graph."""

    READS = {"__bool__", "__float__", "__int__", "__index__", "item", "tolist", "numpy", "cpu", "__format__"}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in self.READS:
            raise AssertionError(f"the captured step reads a tensor on the host: {func.__name__}")
        return func(*args, **(kwargs or {}))


def test_the_captured_step_reads_nothing_back_to_the_host() -> None:
    t = Trainer(tiny_config(), stream(), progress=False, cuda_graphs=True)
    t.run(max_steps=3)  # into the 8x8 fade: real images faded and both networks blending scales
    assert t.phase.kind == "fade" and t._graph is not None
    with _NoHostReads():
        stats = t._graph.step(t, torch.rand(8, 1, 16, 16) * 2 - 1)
    assert set(stats) == {"d_real", "d_fake", "gp", "loss_d", "loss_g"}
    with pytest.raises(AssertionError, match="reads a tensor on the host"), _NoHostReads():
        bool(stats["gp"] > 0)


def test_a_failed_capture_falls_back_to_the_plain_step() -> None:
    plain = Trainer(tiny_config(), stream(), progress=False)
    t = Trainer(tiny_config(), stream(), progress=False, cuda_graphs=True)
    t._graph = StepGraph(t)

    def capture_fails(trainer: Trainer, raw: torch.Tensor) -> dict:
        for p in trainer._d_trainable:  # as if it stopped inside the generator's update
            p.requires_grad_(False)
        raise RuntimeError("operation not permitted when stream is capturing")
    t._graph.step = capture_fails
    with pytest.warns(RuntimeWarning, match="capture failed, training on without graphs"):
        t.train_step()
    assert not t.cuda_graphs and t._graph is None and all(p.requires_grad for p in t.d.parameters())
    plain.run(max_steps=5), t.run(max_steps=4)  # into the 8x8 fade: plain floats from here on
    assert isinstance(t.g.alpha, float)
    a, b = _flat(plain), _flat(t)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU: the capture itself (run on the device)")
def test_cuda_graph_replays_train_like_the_plain_step_on_a_gpu() -> None:
    torch.backends.cudnn.deterministic, torch.backends.cuda.matmul.allow_tf32 = True, False
    cfg = tiny_config(fade_images=(0, 64, 16))
    plain = Trainer(cfg, stream(), progress=False, device="cuda", cuda_graphs=False)
    graphed = Trainer(cfg, stream(), progress=False, device="cuda")
    assert graphed.cuda_graphs  # the default on a single GPU
    plain.run(max_steps=8), graphed.run(max_steps=8)  # 4x4, then the 8x8 fade: 3 eager steps, a capture, 2 replays
    assert graphed.phase.kind == "fade" and graphed._graph is not None and graphed._graph.graph is not None
    a, b = _flat(plain), _flat(graphed)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-4, msg=k)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU: the capture itself (run on the device)")
def test_cuda_graph_run_resumes_like_a_straight_one_on_a_gpu(tmp_path: Path) -> None:
    cfg = tiny_config(fade_images=(0, 64, 16))
    straight = Trainer(cfg, stream(), progress=False, device="cuda")
    straight.run(max_steps=12)  # through the 8x8 fade (replays) into 8x8 stable
    first = Trainer(cfg, stream(), out_dir=tmp_path, progress=False, device="cuda")
    first.run(max_steps=8)  # stops mid fade after two replays
    assert first._graph is not None and first._graph.graph is not None
    second = Trainer(cfg, stream(), out_dir=tmp_path, progress=False, device="cuda")
    second.load_checkpoint()  # eager steps again, then a new capture: the RNG must continue where it was
    second.run(max_steps=4)
    assert second.step == straight.step == 12
    a, b = _flat(straight), _flat(second)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-4, msg=k)


def test_bf16_mixed_precision_trains_close_to_float32() -> None:
    torch.manual_seed(0)
    full = Trainer(tiny_config(), stream(), progress=False)
    mixed = Trainer(tiny_config(precision="bf16"), stream(), progress=False)
    before = _flat(full)
    full.run(max_steps=3), mixed.run(max_steps=3)  # 4x4, then one step of the 8x8 fade
    a, b = _flat(full), _flat(mixed)
    assert all(v.dtype == torch.float32 for v in b.values())  # weights, and so Adam and the EMA, stay float32
    moved = [k for k in before if k in a and k.startswith("g.") and not torch.equal(before[k], a[k])]
    assert moved and any(not torch.equal(a[k], b[k]) for k in moved)  # bfloat16 arithmetic did run
    for k in moved:  # but the same steps: early Adam steps are about lr * sign(gradient); most signs agree
        step_a, step_b = a[k] - before[k], b[k] - before[k]
        assert torch.nn.functional.cosine_similarity(step_a.flatten(), step_b.flatten(), dim=0) > 0.75, k
    with pytest.raises(ValueError, match="precision must be one of"):
        tiny_config(precision="fp16")


def _winograd_layers(net: torch.nn.Module) -> set[bool]:
    return {m.winograd for m in net.modules() if hasattr(m, "winograd")}


def test_winograd_convolutions_train_like_direct_ones() -> None:
    """On by default in float32 on a CPU (`generators.winograd`), for G and D after every growth,
    not for the EMA (samples, export); the same steps as direct convolutions up to rounding."""
    torch.manual_seed(0)
    fast, direct = Trainer(tiny_config(), stream(), progress=False), Trainer(
        tiny_config(), stream(), progress=False, winograd=False)
    assert fast.winograd and not direct.winograd
    fast.run(max_steps=3), direct.run(max_steps=3)  # 4x4, then into the 8x8 fade
    assert fast.scale == 1 and _winograd_layers(fast.g) == _winograd_layers(fast.d) == {True}
    assert _winograd_layers(fast.g_ema) == _winograd_layers(direct.d) == {False}
    before_a, before_b = ({k: v.clone() for k, v in _flat(t).items()} for t in (fast, direct))
    fast.run(max_steps=2), direct.run(max_steps=2)  # the 8x8 fade
    a, b = _flat(fast), _flat(direct)
    moved = [k for k in a if not k.startswith("ema.") and not torch.equal(before_a[k], a[k])]
    assert {"g.scales.0.1.weight", "d.scales.0.0.weight", "d.scale0_conv.weight"} <= set(moved)
    for k in moved:
        step_a, step_b = a[k] - before_a[k], b[k] - before_b[k]
        assert torch.nn.functional.cosine_similarity(step_a.flatten(), step_b.flatten(), dim=0) > 0.99, k
    assert not Trainer(tiny_config(precision="bf16"), stream(), progress=False).winograd


def test_cpu_training_keeps_freed_memory() -> None:
    """glibc's malloc is told to keep freed blocks (`keep_freed_memory`; its effect on a training
    step, page faults and time, is measured in its docstring, not timed here)."""
    import platform
    from generators.train import keep_freed_memory
    assert keep_freed_memory() is (platform.libc_ver()[0] == "glibc")


def test_amx_detection_for_the_bf16_note() -> None:
    from studio.commands.train import cpu_has_amx
    assert cpu_has_amx("processor\t: 0\nflags\t\t: fpu avx2 avx512f amx_bf16 amx_tile\n") is True
    assert cpu_has_amx("flags\t\t: fpu avx2 fma\n") is False
    assert cpu_has_amx("no flags here") is None


def test_lazy_gradient_penalty_and_iterable_source() -> None:
    batches = lambda: iter([torch.rand(5, 1, 16, 16) * 2 - 1 for _ in range(3)])  # noqa: E731
    t = Trainer(tiny_config(gp_every=2), IterableStream(batches), progress=False)
    with_gp = ["gp" in t.train_step() for _ in range(4)]
    assert with_gp == [True, False, True, False]


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        t = Trainer(tiny_config(), stream(rank=rank, world=world), rank=rank, world_size=world, progress=False)
        before = torch.cat([p.detach().flatten().clone() for p in t.g.parameters()])
        t.run(max_steps=4)  # 4x4 stable, then into the 8x8 fade (rebuilt and re-wrapped networks)
        assert t.phase.kind == "fade" and t.scale == 1
        state = {k: v.clone() for k, v in _flat(t).items()}
        state["_moved"] = (torch.cat([p.detach().flatten() for p in t.g.parameters()])[:before.numel()]
                           - before).abs().max()
        torch.save(state, f"{out}/rank{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


def test_ddp_two_gloo_processes_stay_in_sync(tmp_path: Path) -> None:
    # fork: the children start at once instead of importing torch again (minutes on a busy box)
    mp.start_processes(_ddp_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True, start_method="fork")
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["_moved"] > 0  # it trained
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k


def test_cli_trains_a_folder_and_resumes(tmp_path: Path) -> None:
    from studio.cli import main
    for i in range(24):
        Image.new("L", (16, 16), i * 10).save(tmp_path / f"{i}.png")
    args = ["train", "gan", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--resolution", "16",
            "--depths", "8,8,8", "--batch-sizes", "8,8,8", "--latent-dim", "4", "--kimg", "0.016"]
    assert main(args + ["--max-steps", "3"]) == 0
    assert not (tmp_path / "run" / "final.safetensors").exists()
    assert main(args + ["--resume", "--no-cuda-graphs", "--no-winograd", "--export", str(tmp_path / "m")]) == 0
    assert PGAN.load(tmp_path / "m.safetensors").resolution == 16
    assert sorted(p.name for p in (tmp_path / "run" / "samples").iterdir())[0] == "01_4px_stable.png"
    assert main(["train", "gan", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 2


def test_swd_and_nearest_neighbour_benchmarks() -> None:
    from benchmarks.nearest_neighbour import nearest
    from benchmarks.swd import laplacian_pyramid, pyr_up, swd
    g = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.interpolate(torch.rand(64, 1, 8, 8, generator=g), size=32, mode="bilinear") * 2 - 1
    other = torch.nn.functional.interpolate(torch.rand(64, 1, 8, 8, generator=g), size=32, mode="bilinear") * 2 - 1
    noise = torch.rand(64, 1, 32, 32, generator=g) * 2 - 1
    levels = laplacian_pyramid(smooth)
    assert [lv.shape[-1] for lv in levels] == [32, 16]
    assert torch.allclose(levels[0] + pyr_up(levels[1]), smooth, atol=1e-5)  # the pyramid inverts
    same, close, far = swd(smooth, smooth), swd(smooth, other), swd(smooth, noise)
    assert set(same) == {"32", "16", "avg"}  # neighbourhoods are sampled, so same-set SWD is not 0
    assert far["avg"] > 3 * close["avg"] and far["avg"] > 3 * same["avg"]
    d, i = nearest(other[:5], torch.cat([noise, other]))
    assert torch.equal(i, torch.arange(64, 69)) and d.max() < 1e-3
    # SWD cannot see a brightness shift, so `evaluate` reports the channel means beside it
    from benchmarks.swd import evaluate
    model = PGAN.random(PGANConfig(latent_dim=8, depths=(8, 8, 8, 8), channels=1), seed=1)
    result = evaluate(model, smooth)
    means = result["channel_means"]
    assert result["n"] == 32 and len(means["real"]) == len(means["generated"]) == 1


def test_init_continues_a_trained_model_at_its_final_scale(tmp_path: Path) -> None:
    base = PGAN.random(MODEL, seed=7)
    config = tiny_config(stable_images=(16, 16, 24))
    t = Trainer(final_scale_only(config, 24), stream(), progress=False)
    assert [(ph.resolution, ph.kind, ph.images) for ph in t.phases] == [(16, "stable", 24)]
    t.init_from(base)
    z = base.sample_latents(3, seed=0)
    assert torch.equal(t.g_ema(z), base.generate(z))
    # G and D: exact copies (their outputs round differently: they train with Winograd's convolutions)
    for net, ref in ((t.g, base.generator), (t.d, base.discriminator)):
        mine, theirs = net.state_dict(), ref.state_dict()
        assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    model = train(config, stream(), out_dir=tmp_path / "ft", progress=False, log=lambda _: None, init=base)
    assert model.info["training"]["images"] == 24 and model.config == base.config
    # with a time budget: only the final scale is measured and planned, and re-planning (which
    # books time per scale) copes with the scales that never ran
    planned, speeds = plan(final_scale_only(config, 24), 0.05, log=lambda _: None)
    assert [(ph.scale, ph.kind) for ph in planned.phases()] == [(2, "stable")] and speeds[:2] == [0.0, 0.0]
    timed = Trainer(final_scale_only(config, 24), stream(), progress=False)
    timed.budget = {"seconds": 60.0, "speeds": [0.0, 0.0, 100.0]}
    timed.init_from(base)
    for _ in range(2):
        timed.train_step()
    timed.elapsed = 1.0
    timed._replan()
    assert timed.phases[-1].images >= 24
    assert not torch.equal(model.generate(z), base.generate(z))  # it trained
    with pytest.raises(ValueError, match="does not match"):
        Trainer(final_scale_only(config, 8), stream(), progress=False).init_from(
            PGAN.random(replace(MODEL, latent_dim=4)))
    with pytest.raises(ValueError, match="final scale"):
        Trainer(config, stream(), progress=False).init_from(base)


def test_fine_tuning_can_keep_the_coarse_layers_of_g(tmp_path: Path) -> None:
    """--freeze-g-below 16 on a 16 px model: the 4 and 8 px layers (and the EMA's copy of them)
    stay exactly as trained, the 16 px layers and D train on."""
    base = PGAN.random(MODEL, seed=7)
    config = final_scale_only(tiny_config(freeze_g_below=16), 24)
    t = Trainer(config, stream(), progress=False)
    t.init_from(base)
    for _ in range(3):
        t.train_step()
    frozen = ("format_layer.", "scale0.", "to_rgb.0.", "scales.0.", "to_rgb.1.")
    before = base.generator.state_dict()
    for net in (t.g, t.g_ema):
        after = net.state_dict()
        assert all(torch.equal(after[k], before[k]) for k in after if k.startswith(frozen))
        assert not torch.equal(after["scales.1.0.weight"], before["scales.1.0.weight"])
        assert not torch.equal(after["to_rgb.2.weight"], before["to_rgb.2.weight"])
    assert not torch.equal(t.d.state_dict()["decision.weight"], base.discriminator.state_dict()["decision.weight"])
    assert TrainConfig.from_dict(config.to_dict()).freeze_g_below == 16
    for bad in (12, 4, 32):
        with pytest.raises(ValueError, match="freeze_g_below"):
            tiny_config(freeze_g_below=bad)


def test_cli_init_refuses_another_architecture(tmp_path: Path, capsys) -> None:
    from studio.cli import main
    for i in range(12):
        Image.new("L", (16, 16), i * 20).save(tmp_path / f"{i}.png")
    PGAN.random(PGANConfig(latent_dim=4, depths=(8, 8, 8), channels=1)).save(tmp_path / "m.safetensors")
    args = ["train", "gan", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--resolution", "16",
            "--depths", "8,8,8", "--batch-sizes", "8,8,8", "--kimg", "0.016", "--init", str(tmp_path / "m.safetensors")]
    assert main(args + ["--latent-dim", "6"]) == 2 and "differs" in capsys.readouterr().err
    assert main(args + ["--latent-dim", "4", "--export", str(tmp_path / "ft")]) == 0
    ft = PGAN.load(tmp_path / "ft.safetensors")
    assert ft.info["training"]["images"] == 16 and ft.info["continued_from"]["model"].endswith("m.safetensors")


def test_logistic_r1_and_diffaugment_train_and_resume_exactly(tmp_path: Path) -> None:
    """The StyleGAN2 loss with a lazy R1 penalty and DiffAugment: finite losses, the penalty on its
    steps only, and a stop/resume that continues bit-exactly (the augmentations draw from the
    trainer's seeded generator)."""
    cfg = tiny_config(loss="logistic", gp_every=2, r1_gamma=1.0, augment="color,translation,cutout")
    t = Trainer(cfg, stream(), progress=False)
    first, second = t.train_step(), t.train_step()
    assert "gp" in first and "gp" not in second
    assert all(torch.isfinite(v).all() for v in (*first.values(), *second.values()))
    for name in "ab":
        (tmp_path / name).mkdir()
    whole = Trainer(cfg, stream(), out_dir=tmp_path / "a", progress=False)
    whole.run()
    half = Trainer(cfg, stream(), out_dir=tmp_path / "b", progress=False)
    half.run(max_steps=5)
    resumed = Trainer(cfg, stream(), out_dir=tmp_path / "b", progress=False)
    resumed.load_checkpoint()
    resumed.run()
    for a, b in zip(whole.g_ema.state_dict().values(), resumed.g_ema.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="loss must be one of"):
        tiny_config(loss="hinge")
    with pytest.raises(ValueError, match="unknown augmentation"):
        tiny_config(augment="color,zoom")


def test_diffaugment_ops_are_differentiable_and_shaped() -> None:
    from generators.diffaugment import cutout, diff_augment, translation
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 16, 16, requires_grad=True)
    y = diff_augment(x, ("color", "translation", "cutout"), gen)
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    ones = torch.ones(4, 1, 16, 16)
    cut = cutout(ones, gen)
    assert torch.all((cut == 0).flatten(1).sum(1) <= 64) and torch.all((cut == 0).flatten(1).sum(1) >= 16)  # clipped at the edges, as in the reference
    moved = translation(ones, gen)  # a shift by up to 2 px pads with zeros
    assert moved.min() >= 0 and moved.max() == 1 and moved.shape == ones.shape


def test_widen_keeps_the_function_and_noise_breaks_symmetry() -> None:
    from generators.widen import widen
    model = PGAN.random(PGANConfig(latent_dim=8, depths=(16, 8, 4), channels=3), seed=1)
    wide = widen(model, (16, 16, 8), noise=0.0)
    z = torch.randn(5, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        images = model.generator(z)
        assert torch.allclose(wide.generator(z), images, atol=1e-4)
        assert torch.allclose(wide.discriminator(images), model.discriminator(images), atol=1e-4)
    noisy = widen(model, (16, 16, 8), noise=0.01)
    w = noisy.generator.scales[1][1].weight
    assert not torch.equal(w[0], w[1])  # the two copies of channel 0 can now learn apart
    with torch.no_grad():
        assert (noisy.generator(z) - images).abs().mean() < 0.05
    with pytest.raises(ValueError, match="multiple"):
        widen(model, (16, 12, 4))
    with pytest.raises(ValueError, match="4x4 width"):
        widen(model, (32, 8, 4))
