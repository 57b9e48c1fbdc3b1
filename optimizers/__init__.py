"""Latent search: the inspirational-generation objective and the strategies that minimise it.

Public API (used by the studio CLI, the Gradio app and the benchmarks):

    objective = Objective(generator, target, distance=None,
                          weights=Weights(distance=1.0, prior=1.0, realism=0.03),
                          realism_unit=1.0)  # the studio: realism_spread(generator), realism STUDIO_REALISM
    loss, terms = objective(z)          # z [N, d] -> loss [N], terms {"distance", "prior", "realism"}: [N]

`distance` is any callable (images [N, C, H, W], target [1, C, H, W]) -> [N] (differentiable for
gradient search), e.g. an `encoders.Distance`; the default is the pixel MSE `pixel_distance`.

    search = make_search("gradient" | NEVERGRAD_NAME, objective, budget=N, seed=0, batch=16, **kw)
    result = search.run(callback=None, should_stop=None)   # -> SearchResult
    for event in search.iterate(): ...                        # ProgressEvent per step
    search.cancel()                                           # -> best so far (thread-safe)
    z = search.ask(); search.tell(z, losses)                  # ask/tell by hand

- `SEARCHES` maps names to strategies: "gradient" (`GradientSearch`: batched restarts, Adam,
  cosine or step schedule, plateau stop, `start=` an encoder's guess) and every name in
  `nevergrad.optimizers.registry` (`NevergradSearch`). Unknown names raise ValueError with the
  closest names suggested; budgets and batches must be positive integers.
- `ProgressEvent(step, budget, best_loss, best_latent [1, d], terms, seconds)`;
  `SearchResult(latent [1, d], loss, terms, steps, seconds, history, stopped)`.
- NaN/inf losses never become the best and never crash a search.

Composing by preference (no target image, only a person's choices):

    pref = PreferenceSearch(latent_dim, k=9, method="pick" | "rank", strength=1.0, seed=0,
                            start=None, basis=None)
    z = pref.ask()                      # [k, d] this round's candidates (cached, microseconds)
    pref.tell_pick(i) or pref.tell_ranking([best, ..., worst])
    pref.best() -> [d]; pref.rounds; pref.undo(r); pref.branch(r); pref.set_strength(s)
    text = pref.to_json(); PreferenceSearch.from_json(text)   # our JSON, replayed, never unpickled

    PreferenceSearch(..., optimizer="elitist" | "bayes" | "bayes:<model id>" | NEVERGRAD_NAME,
                     basis=Subspace.basis, center=...)
    # "bayes:<model id>": every round's choice in one posterior, with that model's latent metric
    PreferenceSearch(..., optimizer="bayes-image:<model id>", generator=G)
    # the same posterior on the candidates' rendered images; proposals by inversion (seconds a round)
    PreferenceSearch(..., assets=SearchAssets(encoder=E, metric=M, prior=P))
    # the model's data a "<driver>:<model id>" uses; the studio loads them: studio.shipped.search_assets(id, G)
    PreferenceSearch.from_json(text, generator=G, assets=...)   # bayes-image states need the generator again
    name, whole_space = resolve_optimizer("auto", "pick" | "rank", model=id, has_encoder=..., has_metric=...)

This layer never looks a file up by model id: the studio does (`studio.shipped`) and hands over
the objects (encoders, metrics, priors, subspaces).

More in submodules:
- `optimizers.inspire`: `prepare(generator, target, start=encoder, weights=..., distance=...)` once
  (objective, start latents, D's spread cached per generator), then `inspire(prepared, method=...)`
  -> SearchResult or `search(prepared, ...)` to stream; the per-method defaults (`defaults(name)`).
  The CLI, the app and the benchmarks all search this way.
- `optimizers.inversion`: the learned inversion encoder (image -> z, trained on the generator's own
  samples); `load_inversion(path)` gives the encoder `prepare(start=...)` takes (the studio finds
  and loads a model's: `studio.shipped.shipped_encoder(model_id)`).
- `optimizers.subspace`: `image_directions(generator, m)` / `load_subspace(path)`, the latent
  directions that move the image most, a `basis` for preference rounds (a model's saved ones:
  `studio.shipped.shipped_subspace(model_id)`).
- `optimizers.simulate`: simulated users and the compose benchmark (`compose_table`).
"""
from .gradient import GradientSearch
from .nevergrad_search import NevergradSearch, nevergrad_names
from .objective import (STUDIO_REALISM, LinearizedRealism, Objective, Weights, default_realism, independent_realism,
                        latent_prior, pixel_distance, realism_spread, spread_unit)
from .preference import DriverOptions, Feedback, PreferenceSearch, resolve_optimizer
from .preference_base import SearchAssets
from .registry import SEARCHES, make_search
from .search import ProgressEvent, Search, SearchResult

__all__ = ["Objective", "LinearizedRealism", "Weights", "pixel_distance", "latent_prior", "realism_spread",
           "STUDIO_REALISM",
           "independent_realism", "default_realism", "spread_unit",
           "SEARCHES", "make_search", "Search", "GradientSearch", "NevergradSearch", "nevergrad_names",
           "ProgressEvent", "SearchResult", "PreferenceSearch", "DriverOptions", "Feedback", "SearchAssets",
           "resolve_optimizer"]
