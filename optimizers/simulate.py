"""Composing by preference with a simulated user, against random search and full inversion.

A hidden target image; each round the `PreferenceSearch` shows k candidates and the simulated user
picks (or ranks) them by a judge distance to the target: perfectly, with a uniformly wrong pick at
some rate ("flip"), or by a Bradley-Terry / Plackett-Luce choice (P(i) ~ exp(-d_i / T), "bt")
where T is `temperature` times the typical judge distance between the target and a random
generation (so T means the same for every judge and data set).
Scores are the judge distance of the search's current choice after given rounds; random search
shows the same number of random images and keeps the best (a perfect user); full inversion
minimises the judge distance by gradient search (the best the generator can do).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F

from .gradient import GradientSearch
from .objective import DistanceFn, Objective, Weights
from .preference import PreferenceSearch

USERS = ("perfect", "flip", "bt")


@dataclass(frozen=True)
class SimulatedUser:
    """How the simulated person chooses; `error` for "flip", `temperature` for "bt" (a fraction of the
    `scale` passed to `rank`, the typical judge distance)."""

    kind: str = "perfect"
    error: float = 0.2
    temperature: float = 0.05

    def __post_init__(self) -> None:
        if self.kind not in USERS:
            raise ValueError(f"user must be one of {', '.join(USERS)}, got {self.kind!r}")
        if not 0 <= self.error <= 1 or not self.temperature > 0:
            raise ValueError("user error must be in [0, 1] and temperature > 0")

    def rank(self, distances: torch.Tensor, gen: torch.Generator, scale: float = 1.0) -> list[int]:
        """Candidate indices best first, as this user would order them."""
        order = torch.argsort(distances).tolist()
        if self.kind == "flip" and float(torch.rand((), generator=gen)) < self.error:
            j = 1 + int(torch.randint(len(order) - 1, (), generator=gen))
            order[0], order[j] = order[j], order[0]
        elif self.kind == "bt":  # Plackett-Luce: Gumbel-perturbed utilities, sorted
            u = torch.rand(len(distances), generator=gen).clamp(1e-12, 1 - 1e-12)
            order = torch.argsort(distances / (self.temperature * scale) + torch.log(-torch.log(u))).tolist()
        return order


def ssim_distance(images: torch.Tensor, target: torch.Tensor, *, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """1 - SSIM (Wang et al. 2004: Gaussian window 11 / 1.5, C1 = 0.01^2, C2 = 0.03^2 on [0, 1]
    intensities, averaged over channels and positions) per image: [N, C, H, W] vs [1, C, H, W] ->
    [N]. A judge that sees local structure and contrast, not pixel errors; differentiable."""
    if images.dim() != 4 or target.dim() != 4 or target.shape[0] != 1 or images.shape[1:] != target.shape[1:]:
        raise ValueError(f"SSIM needs images [N, C, H, W] and a target [1, C, H, W] of the same size, "
                         f"got {list(images.shape)} and {list(target.shape)}")
    c = images.shape[1]
    x, y = (images + 1) / 2, ((target + 1) / 2).expand_as(images)
    g = torch.exp(-((torch.arange(window, dtype=x.dtype, device=x.device) - window // 2) ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None]).expand(c, 1, window, window).contiguous()

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, kernel, groups=c)  # valid positions only

    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    ssim = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return 1 - ssim.flatten(1).mean(1)


def judge_batch(generator: Any, judge: DistanceFn, target: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return judge(generator.generate(z), target).float().cpu()


def compose(generator: Any, target: torch.Tensor, judge: DistanceFn, *, k: int, rounds: int, method: str = "pick",
            user: SimulatedUser = SimulatedUser(), seed: int = 0, scale: float = 1.0, **search_kw: Any) -> list[float]:
    """Judge distance of the current choice after each round, [rounds]; `scale` is the typical
    judge distance (see `typical_distance`) that a "bt" user's temperature is relative to."""
    search = PreferenceSearch(generator.latent_dim, k=k, method=method, seed=seed, generator=generator, **search_kw)
    gen = torch.Generator().manual_seed(10_000 + seed)
    scores = []
    for _ in range(rounds):
        order = user.rank(judge_batch(generator, judge, target, search.ask()), gen, scale)
        search.tell_pick(order[0]) if method == "pick" else search.tell_ranking(order)
        scores.append(float(judge_batch(generator, judge, target, search.best()[None])[0]))
    return scores


def random_search(generator: Any, target: torch.Tensor, judge: DistanceFn, *, n: int, seed: int = 0) -> list[float]:
    """Best judge distance among the first i random images, for i = 1..n."""
    z = torch.randn(n, generator.latent_dim, generator=torch.Generator().manual_seed(20_000 + seed))
    return torch.cummin(judge_batch(generator, judge, target, z), dim=0).values.tolist()


def typical_distance(generator: Any, target: torch.Tensor, judge: DistanceFn, *, n: int = 64, seed: int = 0) -> float:
    """Median judge distance between the target and random generations."""
    z = torch.randn(n, generator.latent_dim, generator=torch.Generator().manual_seed(30_000 + seed))
    return float(judge_batch(generator, judge, target, z).median())


def full_inversion(generator: Any, target: torch.Tensor, judge: DistanceFn, *, budget: int = 200, batch: int = 8,
                   seed: int = 0, start: torch.Tensor | None = None) -> float:
    """Judge distance of the gradient search's result on the judge distance (prior kept, no realism)."""
    objective = Objective(generator, target, distance=judge, weights=Weights(distance=1.0, prior=1.0, realism=0.0))
    result = GradientSearch(objective, budget=budget, batch=batch, seed=seed, start=start).run()
    return float(judge_batch(generator, judge, target, result.latent)[0])


@dataclass(frozen=True)
class ComposeSetting:
    """One row of the benchmark: a feedback method, a user, and PreferenceSearch options."""

    label: str
    method: str = "pick"
    user: SimulatedUser = SimulatedUser()
    options: tuple[tuple[str, Any], ...] = ()


def compose_table(generator: Any, targets: torch.Tensor, judge: DistanceFn, settings: list[ComposeSetting], *,
                  ks: tuple[int, ...] = (4, 9, 16), checkpoints: tuple[int, ...] = (10, 20, 40), seed: int = 0,
                  inversion_budget: int = 200, starts: torch.Tensor | None = None,
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Mean judge distance over targets [T, C, H, W] for every setting, k and checkpoint, with the
    random-search and full-inversion references and the fraction of their gap each setting closes."""
    rounds = max(checkpoints)
    say = progress or (lambda _msg: None)
    inv = []
    for t in range(len(targets)):
        start = None if starts is None else starts[t]
        inv.append(full_inversion(generator, targets[t:t + 1], judge, budget=inversion_budget, seed=seed, start=start))
        say(f"target {t}: full inversion {inv[-1]:.4f}")
    inversion = sum(inv) / len(inv)
    rand_curves = [random_search(generator, targets[t:t + 1], judge, n=rounds * max(ks), seed=seed + t)
                   for t in range(len(targets))]
    random_ref = {(k, c): sum(curve[k * c - 1] for curve in rand_curves) / len(targets) for k in ks for c in checkpoints}
    scales = [typical_distance(generator, targets[t:t + 1], judge, seed=seed + t) for t in range(len(targets))]
    rows = []
    for s in settings:
        for k in ks:
            curves = [compose(generator, targets[t:t + 1], judge, k=k, rounds=rounds, method=s.method, user=s.user,
                              seed=seed + t, scale=scales[t], **dict(s.options)) for t in range(len(targets))]
            for c in checkpoints:
                mean = sum(curve[c - 1] for curve in curves) / len(curves)
                gap = random_ref[(k, c)] - inversion
                rows.append({"setting": s.label, "k": k, "rounds": c, "judge": mean, "random": random_ref[(k, c)],
                             "gap_closed": (random_ref[(k, c)] - mean) / gap if gap > 0 else math.nan})
            say(f"{s.label} k={k}: " + ", ".join(f"{r['rounds']}r {r['judge']:.4f}" for r in rows[-len(checkpoints):]))
    return {"inversion": inversion, "inversion_per_target": inv, "typical_distance": sum(scales) / len(scales),
            "rows": rows, "targets": len(targets)}


def markdown(table: dict[str, Any]) -> str:
    """The table as markdown: one line per setting and k, judge distance (gap closed) per checkpoint."""
    rows = table["rows"]
    checkpoints = sorted({r["rounds"] for r in rows})
    head = "| setting | k | " + " | ".join(f"{c} rounds" for c in checkpoints) + " |"
    lines = [head, "|" + "---|" * (2 + len(checkpoints))]
    seen: dict[tuple[str, int], dict[int, dict]] = {}
    for r in rows:
        seen.setdefault((r["setting"], r["k"]), {})[r["rounds"]] = r
    randoms: dict[int, dict[int, float]] = {}
    for (label, k), by in seen.items():  # a merged table may hold settings measured to fewer rounds
        randoms.setdefault(k, {}).update({c: by[c]["random"] for c in checkpoints if c in by})
        cells = [f"{by[c]['judge']:.4f} ({100 * by[c]['gap_closed']:.0f}%)" if c in by else "-" for c in checkpoints]
        lines.append(f"| {label} | {k} | " + " | ".join(cells) + " |")
    for k, by in sorted(randoms.items()):
        lines.append(f"| random search, same images | {k} | "
                     + " | ".join(f"{by[c]:.4f} (0%)" if c in by else "-" for c in checkpoints) + " |")
    lines.append(f"| full inversion | - | " + " | ".join(f"{table['inversion']:.4f} (100%)" for _ in checkpoints) + " |")
    return "\n".join(lines)


__all__ = ["SimulatedUser", "USERS", "ssim_distance", "compose", "random_search", "typical_distance", "full_inversion", "ComposeSetting",
           "compose_table", "markdown"]
