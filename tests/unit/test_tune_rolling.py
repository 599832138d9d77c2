"""`gfm tune --rolling N --every D`: validation splits that end before the first rolling hold-out,
and the objective pooled over them as `gfm evaluate --rolling` pools its cutoffs."""

import dataclasses
import datetime as dt

import pytest

from evaluation.rolling import rolling_cutoffs, rolling_every_days
from evaluation.tune import PooledObjective, validation_timeline, validation_timelines
from gfm.errors import ConfigError
from gfm.timeline import Timeline

TIMELINE = Timeline(dt.datetime(2016, 9, 18), history_days=365, label_days=14, holdout_days=365)


def test_one_cutoff_is_the_plain_validation_split():
    assert validation_timelines(TIMELINE) == [validation_timeline(TIMELINE)]


@pytest.mark.parametrize("n,every", [(8, 365), (3, 200), (4, 500)])
def test_no_validation_holdout_reaches_a_rolling_holdout(n, every):
    validation = validation_timelines(TIMELINE, n, every)
    earliest_rolling = min(rolling_cutoffs(TIMELINE.cutoff, n, every))
    assert len(validation) == n
    assert validation[0].holdout_end == earliest_rolling  # the latest ends where they begin
    assert all(v.holdout_end <= earliest_rolling for v in validation)
    cutoffs = [v.cutoff for v in validation]
    assert cutoffs == sorted(cutoffs, reverse=True) and len(set(cutoffs)) == n
    assert all(dataclasses.replace(v, cutoff=TIMELINE.cutoff) == TIMELINE for v in validation)


def test_every_defaults_to_the_holdout_length():
    assert validation_timelines(TIMELINE, 3) == validation_timelines(TIMELINE, 3, 365)


def test_per_user_protocol_has_no_cutoffs_to_roll():
    per_user = dataclasses.replace(TIMELINE, protocol="per_user")
    with pytest.raises(ConfigError, match="tune without --rolling"):
        validation_timelines(per_user, 2)


def test_zero_every_is_refused():
    with pytest.raises(ConfigError, match="--every must be at least 1 day"):
        validation_timelines(TIMELINE, 2, 0)


def test_evaluate_and_tune_space_their_cutoffs_alike():
    """One rule for `gfm evaluate --rolling` and `gfm tune --rolling`: --every, else the
    hold-out's length; 0 refused by both (evaluation.run checks it before any work)."""
    assert rolling_every_days(TIMELINE, None) == TIMELINE.holdout_days
    assert rolling_every_days(TIMELINE, 30) == 30
    for every in (0, -5):
        with pytest.raises(ConfigError, match="--every must be at least 1 day"):
            rolling_every_days(TIMELINE, every)


class _Split:
    """An Objective's stand-in: fixed hits and users per type at one validation cutoff."""

    model = "ease"

    def __init__(self, cutoff: dt.datetime, hits: dict[str, int], units: dict[str, int]):
        self.timeline = dataclasses.replace(TIMELINE, cutoff=cutoff)
        self.hits, self.units = hits, units

    def __call__(self, params, report=None):
        rates = {t: self.hits[t] / n for t, n in self.units.items()}
        return sum(rates.values()) / len(rates), {"hr@10": rates, "hits": self.hits,
                                                  "units": self.units}


def test_pooled_objective_weighs_each_cutoff_by_its_users():
    big = _Split(dt.datetime(2007, 1, 1), {"action": 30, "drama": 10}, {"action": 100, "drama": 50})
    small = _Split(dt.datetime(2006, 1, 1), {"action": 9}, {"action": 10})
    value, details = PooledObjective([big, small])({})
    assert details["hr@10"] == {"action": pytest.approx(39 / 110), "drama": pytest.approx(0.2)}
    assert value == pytest.approx((39 / 110 + 0.2) / 2)  # types alike, cutoffs by their users
    assert details["units"] == {"action": 110, "drama": 50}
    assert [c["units"] for c in details["per_cutoff"]] == [150, 10]


def test_pooled_two_tower_is_refused_with_where_to_go():
    two_tower = _Split(dt.datetime(2007, 1, 1), {}, {})
    two_tower.model = "two-tower"
    with pytest.raises(ConfigError, match="bench/two_tower_variants.py pooled"):
        PooledObjective([two_tower])
