"""Measurements of an encoder's features: embeddings, linear probe, k-NN, singular spectrum and
effective rank (dimensional collapse, Jing et al. 2022)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .backbone import Encoder


@torch.no_grad()
def embed(encoder: Encoder, images: torch.Tensor, *, batch_size: int = 512) -> torch.Tensor:
    """[N, C, H, W] (float in [-1, 1], or uint8) -> features [N, D] on the CPU, encoder in eval."""
    encoder.eval()
    device = next(encoder.parameters()).device
    out = []
    for b in images.split(batch_size):
        if b.dtype == torch.uint8:
            b = b.float().div(127.5).sub(1.0)
        out.append(encoder(b.to(device)).float().cpu())
    return torch.cat(out) if out else torch.zeros(0, encoder.dim)


def singular_spectrum(features: torch.Tensor) -> torch.Tensor:
    """Singular values of the centred feature matrix [N, D], descending, scaled to sum to 1."""
    if features.dim() != 2 or len(features) < 2:
        raise ValueError(f"expected features [N >= 2, D], got {list(features.shape)}")
    s = torch.linalg.svdvals((features - features.mean(0)).double())
    return (s / s.sum().clamp_min(1e-30)).float()


def effective_rank(features: torch.Tensor) -> float:
    """exp(entropy of the normalised singular values) (Roy & Vetterli 2007): D for isotropic
    features, 1 when everything lies on one line."""
    p = singular_spectrum(features).double().clamp_min(1e-30)
    return float(torch.exp(-(p * p.log()).sum()))


def _standardise(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean, std = train.mean(0), train.std(0).clamp_min(1e-6)
    return (train - mean) / std, (test - mean) / std


def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                 *, weight_decay: float = 1e-4, steps: int = 200, seed: int = 0) -> float:
    """Accuracy of multinomial logistic regression (L-BFGS, full batch) on standardised features
    (float32: about half the time of float64; on the shipped DCLW encoders the same accuracy to 0.1 point)."""
    torch.manual_seed(seed)
    xtr, xte = _standardise(train_x.float(), test_x.float())
    classes = int(max(train_y.max(), test_y.max())) + 1
    # weights [classes, D] and logits (w @ x^T)^T: the weight gradient is then grad^T @ x, a fast
    # GEMM, where x^T @ grad (weights [D, classes]) took 12x longer on 54,000 x 1,024 features
    w = torch.zeros(classes, xtr.shape[1], requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=steps, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy((w @ xtr.T).T + b, train_y) + weight_decay * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float((((w @ xte.T).T + b).argmax(1) == test_y).double().mean())


# a decade apart; 1e-2 and 1e-1 joined when the old top (1e-3) kept being the one chosen
PROBE_WEIGHT_DECAYS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


def tuned_linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                       *, weight_decays: tuple[float, ...] = PROBE_WEIGHT_DECAYS, val_fraction: float = 0.1,
                       seed: int = 0) -> tuple[float, float]:
    """(test accuracy, chosen weight decay) of `linear_probe`, its L2 weight chosen on a seeded
    `val_fraction` of the training rows (never the test set), then refitted on all of them."""
    if not 0 < val_fraction < 1 or not weight_decays:
        raise ValueError("val_fraction must be in (0, 1) and weight_decays non-empty")
    order = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(seed))
    n_val = max(1, int(len(train_x) * val_fraction))
    val, fit = order[:n_val], order[n_val:]
    scores = {wd: linear_probe(train_x[fit], train_y[fit], train_x[val], train_y[val], weight_decay=wd, seed=seed)
              for wd in weight_decays}
    best = max(weight_decays, key=lambda wd: (scores[wd], wd))  # ties go to the stronger penalty
    return linear_probe(train_x, train_y, test_x, test_y, weight_decay=best, seed=seed), best


def knn_accuracy(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                 *, k: int = 20, batch_size: int = 1024) -> float:
    """Accuracy of a k-nearest-neighbour majority vote with cosine similarity of centred features."""
    mean = train_x.mean(0)
    tr = F.normalize(train_x - mean, dim=1)
    classes = int(max(train_y.max(), test_y.max())) + 1
    correct = 0
    for xb, yb in zip(test_x.split(batch_size), test_y.split(batch_size)):
        sim = F.normalize(xb - mean, dim=1) @ tr.T
        idx = sim.topk(min(k, len(tr)), dim=1).indices
        votes = F.one_hot(train_y[idx], classes).sum(1)
        correct += int((votes.argmax(1) == yb).sum())
    return correct / len(test_y)
