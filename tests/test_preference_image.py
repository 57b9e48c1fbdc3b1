"""The "bayes-image" preference driver: a choice model on the candidates' images."""
import json

import numpy as np
import pytest
import torch

import assetpaths
from optimizers import DriverOptions, PreferenceSearch, SearchAssets
from optimizers import preference_image
from optimizers.preference_image import ImageOptions, fit_pixel_prior, load_pixel_prior, pixel_prior, save_pixel_prior
from studio.shipped import optimizer_assets, search_assets, shipped_pixel_prior
from weightfile import WeightFileError
from tests.conftest import assert_replays

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


class Linear:
    """A generator whose images are a linear map of the latent: 6 -> 1 x 4 x 4."""

    latent_dim, channels, resolution = 6, 1, 4

    def __init__(self, seed: int = 0):
        self.w = torch.from_numpy(np.random.RandomState(seed).randn(6, 16) / 3).float()

    def generate(self, z):
        return (z @ self.w).view(-1, 1, 4, 4)


def image_distance(gen, z, target):
    return ((gen.generate(z).flatten(1) - gen.generate(target[None]).flatten(1)) ** 2).mean(1)


def test_pixel_prior_spans_the_images():
    gen = Linear()
    prior = pixel_prior(gen, 6, n=512)
    assert prior.basis.shape == (16, 6) and prior.mean.shape == (16,)
    np.testing.assert_allclose(prior.basis.T @ prior.basis, np.eye(6), atol=1e-6)
    w = gen.w.double().numpy()  # every image lies in the row space of w: the basis spans it
    np.testing.assert_allclose(prior.basis @ (prior.basis.T @ w.T), w.T, atol=1e-6)
    assert np.all(np.diff(prior.variance) <= 1e-12) and prior.variance[0] > 0  # largest first
    assert pixel_prior(gen, 6, n=512) is prior  # cached per generator


def test_finds_a_target_image_from_rankings():
    gen = Linear()
    gaps = []
    for seed in range(3):
        target = torch.from_numpy(np.random.RandomState(40 + seed).randn(6)).float()
        search = PreferenceSearch(6, k=9, method="rank", optimizer="bayes-image", generator=gen, seed=seed,
                                  strength=0.6)
        first = float(image_distance(gen, search.ask(), target).min())
        for _ in range(12):
            search.tell_ranking(torch.argsort(image_distance(gen, search.ask(), target)).tolist())
        gaps.append(float(image_distance(gen, search.best()[None], target)[0]) / first)
    assert np.mean(gaps) < 0.25, gaps  # far nearer than the best of the first round


def test_replay_undo_and_json_use_the_shown_candidates():
    gen = Linear(1)
    search = PreferenceSearch(6, k=4, method="rank", optimizer="bayes-image", generator=gen, seed=2, strength=0.8)
    seen = []
    for r in range(5):
        if r == 2:
            search.set_strength(0.4)
        seen.append(search.ask())
        search.tell_ranking([(r + i) % 4 for i in range(4)])
    state = json.loads(search.to_json())
    assert len(state["shown"]) == 5 and len(state["shown"][0]) == 4
    assert_replays(search, PreferenceSearch.from_json(search.to_json(), generator=gen), seen, 3)
    for r in range(5):  # after undo (candidates taken back, not recomputed) the same rounds come again
        if r == 2:
            search.set_strength(0.4)
        torch.testing.assert_close(search.ask(), seen[r])
        search.tell_ranking([(r + i) % 4 for i in range(4)])
    with pytest.raises(ValueError, match="needs the generator"):
        PreferenceSearch.from_json(json.dumps(state))
    state["shown"][1] = state["shown"][1][:2]
    with pytest.raises(ValueError, match="shown"):
        PreferenceSearch.from_json(json.dumps(state), generator=gen)
    del state["shown"]
    with pytest.raises(ValueError, match="keys"):
        PreferenceSearch.from_json(json.dumps(state), generator=gen)


def test_undo_replays_from_the_renders_it_already_made():
    """Undo replays the kept rounds from their shown candidates; their renders are cached by latent,
    so only what was never rendered is generated again, and the next round is the same."""
    class Counting(Linear):
        rendered = 0

        def generate(self, z):
            Counting.rendered += 0 if z.requires_grad else len(z)
            return super().generate(z)

    gen = Counting(2)
    search = PreferenceSearch(6, k=4, method="rank", optimizer="bayes-image", generator=gen, seed=1)
    seen = []
    for r in range(6):
        seen.append(search.ask())
        search.tell_ranking([(r + i) % 4 for i in range(4)])
    before = Counting.rendered
    search.undo(5)
    assert Counting.rendered - before <= 1  # the start's image at most; 5 rounds x 4 shown come from the cache
    torch.testing.assert_close(search.ask(), seen[5])


def test_warm_start_leads_the_first_round():
    gen = Linear()
    start = torch.linspace(-1, 1, 6)
    search = PreferenceSearch(6, k=4, method="pick", optimizer="bayes-image", generator=gen, seed=0, start=start)
    torch.testing.assert_close(search.ask()[0], start)
    search.tell_pick(2)
    assert torch.isfinite(search.ask()).all()


def test_shipped_model_with_its_inversion_encoder():
    from studio.catalog import Catalog
    gen = Catalog().generator("fashion32")
    search = PreferenceSearch(64, k=4, method="rank", optimizer="bayes-image:fashion32", generator=gen, seed=0,
                              assets=search_assets("fashion32", gen))
    assert search._encoder is not None
    for _ in range(2):
        search.tell_ranking([3, 1, 0, 2])
    assert search.ask().shape == (4, 64) and torch.isfinite(search.ask()).all()
    with pytest.raises(ValueError, match="needs the generator"):
        PreferenceSearch(32, optimizer="bayes-image:fashion32", generator=gen)


@pytest.fixture
def lin_model(tmp_path):
    """A model id "lin" whose dependent files live beside tmp_path/lin.safetensors (a user's model)."""
    assetpaths.register("lin", tmp_path / "lin.safetensors")
    yield "lin"
    assetpaths.unregister("lin")


def test_pixel_prior_file_belongs_to_its_generator(lin_model, caplog):
    gen = Linear()
    prior, probes = fit_pixel_prior(gen, 6, n=512)
    path = save_pixel_prior(prior, gen, probes, assetpaths.output("pixels", lin_model))  # found beside the model
    loaded = load_pixel_prior(path, gen)
    np.testing.assert_allclose(loaded.basis, prior.basis, atol=1e-3)  # stored as float16
    np.testing.assert_allclose(loaded.variance, prior.variance, rtol=1e-6)
    with pytest.raises(WeightFileError, match="another generator"):
        load_pixel_prior(path, Linear(seed=5))  # same shapes, other weights: its probe images differ
    shipped = pixel_prior(gen, 4, shipped=shipped_pixel_prior(lin_model, gen))  # the file's top 4, not a fresh fit
    np.testing.assert_array_equal(shipped.basis, loaded.basis[:, :4])
    other = Linear(seed=5)
    with caplog.at_level("WARNING"):
        refit = pixel_prior(other, 4, n=512, shipped=shipped_pixel_prior(lin_model, other))  # stale: computed
    assert "another generator" in caplog.text
    np.testing.assert_allclose(np.abs(refit.basis.T @ fit_pixel_prior(other, 4, n=512)[0].basis), np.eye(4), atol=1e-6)


def test_image_driver_uses_the_data_it_is_handed():
    gen = Linear(3)
    prior, _ = fit_pixel_prior(gen, 6, n=256, seed=7)
    options = DriverOptions("bayes-image", "lin", image=ImageOptions(components=4))
    search = PreferenceSearch(6, k=4, optimizer=options, generator=gen, seed=0, assets=SearchAssets(prior=prior))
    np.testing.assert_array_equal(search._driver.prior.basis, prior.basis[:, :4])  # not computed again
    assert search._encoder is None  # none given: the inversions start from the current choice
    assert optimizer_assets("elitist", gen).prior is None and optimizer_assets("bayes-image", gen).encoder is None
    shipped = optimizer_assets("bayes-image:fashion32")
    assert shipped.encoder is not None and shipped.metric is None  # what that driver uses, nothing more


@pytest.mark.parametrize("model_id", ["faces64", "fashion32", "textures64"])
def test_shipped_pixel_priors_are_their_generators(model_id):
    """Retraining a generator without rerunning scripts/fit_preference_metric.py fails here."""
    from studio.catalog import Catalog
    prior = load_pixel_prior(assetpaths.find("pixels", model_id), Catalog().generator(model_id))
    assert prior.components == preference_image.DEFAULT_COMPONENTS


def test_proposals_start_from_the_nearest_shown_candidate():
    gen = Linear()
    starts = []
    inverting = DriverOptions("bayes-image", image=ImageOptions.inverting())  # warm starts: not the fast path's
    search = PreferenceSearch(6, k=4, method="rank", optimizer=inverting, generator=gen, seed=3)
    invert = search._driver.invert
    search._driver.invert = lambda images, init: (starts.append(init.copy()), invert(images, init))[1]
    shown = search.ask().numpy().astype(np.float64)
    search.tell_ranking([2, 0, 1, 3])
    search.ask()
    assert len(starts) == 1 and all(any(np.allclose(row, s) for s in shown) for row in starts[0])
    search._driver.invert = invert


@pytest.mark.parametrize("optimizer", ["bayes-image:faces64", "elitist"])  # the app's "auto" for rankings, picks
def test_default_candidates_stay_as_realistic_and_varied_as_browse(optimizer):
    """Issue 25 item 3: with the default ("auto") drivers the candidates of later rounds must stay as
    realistic (the discriminator's score) and as varied as the nearest images Browse shows (its
    variations around an image at the default strength 0.35), not collapse into near-identical
    blurry faces. A perfect pixel user steers towards a held-out face for 8 rounds of 9 on the
    shipped faces64."""
    from studio.app.explore import variations
    from studio.catalog import Catalog
    from studio.data import load_dataset, to_float
    gen = Catalog().generator("faces64")
    target = to_float(load_dataset("faces", split="val", size=64, channels=3).images[:1])
    with torch.no_grad():
        varied = [gen.generate(variations(z, n=9, strength=0.35, seed=i))
                  for i, z in enumerate(gen.sample_latents(4, seed=6))]
        browse_realism = float(torch.stack([gen.realism(x).mean() for x in varied]).mean())
        browse_spread = sum(mean_rms_spread(x) for x in varied) / len(varied)
    search = PreferenceSearch(gen.latent_dim, k=9, strength=0.6, optimizer=optimizer, generator=gen, seed=0)
    for _ in range(8):
        x = gen.generate(search.ask())
        search.tell_pick(int(((x - target) ** 2).flatten(1).mean(1).argmin()))
    with torch.no_grad():
        x = gen.generate(search.ask())
        realism = float(gen.realism(x).mean())
    assert realism >= browse_realism, (realism, browse_realism)
    assert mean_rms_spread(x) >= 0.5 * browse_spread, (mean_rms_spread(x), browse_spread)


def mean_rms_spread(x: torch.Tensor) -> float:
    """Root mean squared pixel distance between two of the images x [k, C, H, W]."""
    d = torch.cdist(x.flatten(1).double(), x.flatten(1).double()) ** 2 / x[0].numel()
    return float((d.sum() / (len(x) * (len(x) - 1))).sqrt())


def test_the_fast_default_keeps_the_choice_and_steps_around_it():
    """The default bayes-image round: the current choice first, `local` Gaussian steps around it, then
    the posterior draws' short inversions, all on the typical shell |z|^2 = d."""
    gen = Linear()
    options = ImageOptions()
    assert options.keep_current and options.typical and options.local == 2 and options.steps == 4
    search = PreferenceSearch(6, k=5, method="pick", optimizer="bayes-image", generator=gen, seed=4, strength=0.6)
    search.tell_pick(3)
    chosen = search.best()
    z = search.ask()
    torch.testing.assert_close(z[0], chosen)
    torch.testing.assert_close(z[3:].norm(dim=1), torch.full((2,), 6 ** 0.5), atol=1e-4, rtol=0)
    assert len({tuple(row.tolist()) for row in z}) == 5  # no two alike


def test_numpy_blas_runs_on_one_thread_beside_torch() -> None:
    """The choice models' numpy algebra must not leave spinning BLAS threads on torch's cores
    (a render right after a numpy matmul took 2-8x longer on 2 cores)."""
    import threadpoolctl
    from optimizers.preference_model import one_blas_thread
    assert one_blas_thread()
    blas = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    assert blas and all(i["num_threads"] == 1 for i in blas)
