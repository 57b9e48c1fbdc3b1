"""The preference drivers' protocol and their typed options: every driver implements what
`PreferenceSearch` calls, options are saved in the state, and states saved before load as they ran."""
import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from optimizers import PreferenceSearch
from optimizers.preference_base import Driver
from optimizers.preference_drivers import (DRIVERS, ChoiceOptions, DriverOptions, ImageOptions, NevergradDriver,
                                           make_driver)

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py

LEGACY = Path(__file__).parent / "data" / "preference_states_legacy.json"


from tests.test_preference_image import Linear  # noqa: E402  (the legacy states' generator: 6 -> 1 x 4 x 4)


@pytest.mark.parametrize("cls", [*DRIVERS.values(), NevergradDriver])
def test_every_driver_implements_the_protocol(cls):
    assert issubclass(cls, Driver)
    assert cls.ask is not Driver.ask and cls.tell is not Driver.tell
    assert "shown" in inspect.signature(cls.tell).parameters
    if cls.plans_first_round:  # the search hands them the strength
        assert cls.set_strength is not Driver.set_strength
    if cls.replays_shown:  # the search gives back shown candidates on replay and undo
        assert cls.offer is not Driver.offer


@pytest.mark.parametrize("name", ["elitist", "CMA", "DiscreteOnePlusOne"])
def test_drivers_that_propose_again_refuse_shown_candidates(name):
    driver = make_driver(DriverOptions.parse(name), np.zeros(3), 4, 0)
    driver.ask()
    with pytest.raises(ValueError, match="takes no shown candidates"):
        driver.tell((1,), shown=np.zeros((4, 3)))
    with pytest.raises(NotImplementedError):
        driver.offer(np.zeros((4, 3)))


def test_options_are_typed_strict_and_round_trip():
    options = DriverOptions("bayes-image", "faces64", ChoiceOptions(temperature=0.5, rank_depth=2),
                            ImageOptions(steps=3, projected=True))
    assert options.name == "bayes-image:faces64" and options.plans_first_round and options.replays_shown
    assert DriverOptions.from_dict(json.loads(json.dumps(options.to_dict()))) == options
    assert DriverOptions.parse("bayes:fashion32") == DriverOptions("bayes", "fashion32")
    with pytest.raises(ValueError, match="unknown choice options"):
        ChoiceOptions.from_dict({"temprature": 0.3})
    with pytest.raises(ValueError, match="unknown image options"):
        ImageOptions.from_dict({"invert_steps": 60})
    with pytest.raises(ValueError, match="steps"):
        ImageOptions(steps=-1)
    with pytest.raises(ValueError, match="error_rate"):
        ChoiceOptions(error_rate=1.5)
    with pytest.raises(ValueError, match="names a model"):
        DriverOptions("elitist", "faces64")
    with pytest.raises(ValueError, match="unknown nevergrad optimizer"):
        DriverOptions.parse("NoSuchOptimizer")


def test_options_travel_in_the_state():
    gen = Linear(2)
    options = DriverOptions("bayes-image", None, ChoiceOptions(temperature=0.4), ImageOptions(steps=5, typical=True))
    search = PreferenceSearch(6, k=4, method="rank", optimizer=options, generator=gen, seed=1, strength=0.7)
    for order in ([2, 0, 1, 3], [1, 3, 0, 2]):
        search.ask()
        search.tell_ranking(order)
    state = json.loads(search.to_json())
    assert state["options"] == options.to_dict() and state["optimizer"] == "bayes-image"
    again = PreferenceSearch.from_json(state, generator=gen)
    assert again.options == options
    torch.testing.assert_close(again.ask(), search.ask())
    with pytest.raises(ValueError, match="disagree"):
        PreferenceSearch.from_json({**state, "optimizer": "bayes-image:faces64"}, generator=gen)
    with pytest.raises(ValueError, match="unknown image options"):
        PreferenceSearch.from_json({**state, "options": {**state["options"], "image": {"magic": 1}}}, generator=gen)


@pytest.mark.parametrize("name", ["elitist", "bayes", "bayes-image", "CMA"])
def test_states_saved_before_options_replay_as_they_ran(name):
    """tests/data/preference_states_legacy.json was written by the code before typed options
    (commit 47c7fee): the state after 3 rounds and the round it showed next."""
    saved = json.loads(LEGACY.read_text())[name]
    assert "options" not in saved["state"]
    search = PreferenceSearch.from_json(saved["state"], generator=Linear(0))
    assert search.options == DriverOptions.legacy(saved["state"]["optimizer"])
    if name == "bayes-image":  # the old proposals: full inversions, not today's fast path
        assert search.options.image == ImageOptions.inverting()
    torch.testing.assert_close(search.ask(), torch.tensor(saved["next"]), atol=1e-5, rtol=0)
    assert "options" in json.loads(search.to_json())  # saved again, with the options it ran with
