"""The DHNM rule on hand-made score sequences: every branch, static mode, exhaustion and exact resume."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch

from train.dhnm import DHNM, DHNMConfig


def one_slot(pool: int = 10, **kw) -> DHNM:
    return DHNM([pool], DHNMConfig(k=1, skip_top=kw.pop("skip_top", 0), **kw))


def test_initial_slots_skip_the_top_ranks():
    d = DHNM([20, 5], DHNMConfig(k=3, skip_top=3))
    assert d.negatives(0) == [3, 4, 5]
    assert d.negatives(1) == [3, 4, None]  # short pool: empty slot, the loss masks it


def test_a_query_can_start_before_skip_top():
    """A short pool's own start (its given negative's index): served from there, later ranks replace it."""
    d = DHNM([20, 3], DHNMConfig(k=2, skip_top=3), starts=[3, 2])
    assert d.negatives(0) == [3, 4] and d.negatives(1) == [2, None]
    d = DHNM([4], DHNMConfig(k=1, skip_top=3), starts=[1])
    d.update([0], [[0.1]])
    assert d.negatives(0) == [2] and d.counts["used"] == 0
    d.update([0], [[0.5]])  # the replacement's first use
    assert d.counts["used"] == 1
    with pytest.raises(ValueError, match="2 start ranks for 1 pools"):
        DHNM([4], starts=[0, 0])


def test_initial_drop_when_first_score_is_below_point_four():
    d = one_slot()
    assert d.update([0], [[0.39]]) == 1
    assert d.negatives(0) == [1] and d.counts["initial_drops"] == 1
    assert d.update([0], [[0.41]]) == 0  # the new negative's own first score is S0 = 0.41: kept
    assert d.negatives(0) == [1] and d.counts["kept"] == 1


def test_decay_replacement_needs_both_conditions():
    d = one_slot()
    d.update([0], [[0.8]])  # S0 = 0.8
    d.update([0], [[0.69]])  # 1.2 * 0.69 = 0.828 >= 0.8: keep
    assert d.negatives(0) == [0]
    d.update([0], [[0.66]])  # 1.2 * 0.66 = 0.792 < 0.8 and 0.66 < 0.7: replace
    assert d.negatives(0) == [1] and d.counts["decay_replacements"] == 1


def test_keep_when_score_fell_but_is_still_high():
    d = one_slot()
    d.update([0], [[0.95]])
    d.update([0], [[0.75]])  # 1.2 * 0.75 = 0.9 < 0.95 but 0.75 >= 0.7: still hard, keep
    d.update([0], [[0.7]])  # S < 0.7 is strict
    assert d.negatives(0) == [0] and d.replacements == 0 and d.counts["kept"] == 3


def test_replacement_starts_a_fresh_s0():
    d = one_slot()
    d.update([0], [[0.5]])
    d.update([0], [[0.3]])  # 1.2 * 0.3 = 0.36 < 0.5 and 0.3 < 0.7: replace
    assert d.negatives(0) == [1]
    d.update([0], [[0.6]])  # the new negative's S0 = 0.6 (the old S0 is forgotten)
    d.update([0], [[0.9]])  # a score that rose is kept
    assert d.negatives(0) == [1]


def test_exhaustion_keeps_current_negative_and_counts_once():
    d = one_slot(pool=2)
    d.update([0], [[0.1]])  # drop 0 -> 1
    assert d.negatives(0) == [1]
    d.update([0], [[0.1]])  # nothing left: keep 1, exhausted
    d.update([0], [[0.0]])  # not checked again
    assert d.negatives(0) == [1]
    assert d.counts["exhausted"] == 1 and d.counts["initial_drops"] == 1 and d.counts["checked"] == 2


def test_slots_share_the_pool_in_rank_order():
    d = DHNM([12], DHNMConfig(k=3, skip_top=2))
    assert d.negatives(0) == [2, 3, 4]
    d.update([0], torch.tensor([[0.9, 0.1, 0.2]]))  # slots 1 and 2 drop: they take ranks 5 and 6
    assert d.negatives(0) == [2, 5, 6]
    d.update([0], torch.tensor([[0.5, 0.8, float("nan")]]))  # slot 0 decays -> 7; NaN slot skipped
    assert d.negatives(0) == [7, 5, 6]
    assert d.stats()["replacements"] == 3


def test_static_mode_never_replaces():
    d = DHNM([10], DHNMConfig(k=2, skip_top=0, mode="static"))
    for sims in ([0.0, 0.1], [0.9, 0.9], [0.0, 0.0]):
        assert d.update([0], [sims]) == 0
    assert d.negatives(0) == [0, 1] and d.stats()["checked"] == 0


def test_thresholds_are_configurable():
    d = one_slot(init_threshold=0.2, decay_ratio=2.0, max_current=0.5)
    d.update([0], [[0.3]])  # 0.3 >= 0.2: kept
    d.update([0], [[0.2]])  # 2 * 0.2 = 0.4 >= 0.3: kept
    d.update([0], [[0.1]])  # 0.2 < 0.3 and 0.1 < 0.5: replaced
    assert d.negatives(0) == [1]


def test_state_round_trip_resumes_exactly():
    cfg = DHNMConfig(k=2, skip_top=1)
    gen = torch.Generator().manual_seed(0)
    stream = [(torch.randint(0, 4, (3,), generator=gen).tolist(), torch.rand(3, 2, generator=gen)) for _ in range(40)]
    pools = [6, 9, 3, 12]
    straight = DHNM(pools, cfg)
    for qids, sims in stream:
        straight.update(qids, sims)
    first = DHNM(pools, cfg)
    for qids, sims in stream[:17]:
        first.update(qids, sims)
    saved = json.loads(json.dumps(first.state_dict()))  # must survive JSON
    resumed = DHNM(pools, cfg)
    resumed.load_state_dict(saved)
    for qids, sims in stream[17:]:
        resumed.update(qids, sims)
    assert resumed.state_dict() == straight.state_dict()
    assert all(resumed.negatives(q) == straight.negatives(q) for q in range(4))
    assert straight.replacements > 0 and straight.counts["exhausted"] > 0


def test_state_from_another_config_or_pool_set_is_refused():
    d = DHNM([5, 5], DHNMConfig(k=2))
    d.update([0], [[0.1, 0.9]])
    state = d.state_dict()
    with pytest.raises(ValueError, match="another config"):
        DHNM([5, 5], DHNMConfig(k=3)).load_state_dict(state)
    with pytest.raises(ValueError, match="covers 2 queries"):
        DHNM([5], DHNMConfig(k=2)).load_state_dict(state)


def test_bad_inputs():
    """Each refusal names its cause, and a refused update changes nothing (before stop 51 it counted the draws
    first; audit): matches, so that another error of the same type (zip's, a list index) would not pass."""
    with pytest.raises(ValueError, match="sometimes"):
        DHNMConfig(mode="sometimes")
    d = DHNM([4], DHNMConfig(k=1))
    for qid in (3, -1):  # -1 would index the last pool
        with pytest.raises(IndexError, match=re.escape(f"query id {qid} outside the 1 pools")):
            d.negatives(qid)
    before = d.state_dict()
    with pytest.raises(ValueError, match=re.escape("1 similarity rows for 2 queries")):
        d.update([0, 0], [[0.5]])
    assert d.state_dict() == before
    assert math.isclose(DHNMConfig().decay_ratio, 1.2)


def test_a_query_twice_in_one_batch_is_judged_once():
    """Its rows were served the same negatives: the second row's cosine is the dropped negative's, and would have
    been taken as the replacement's S₀ (and dropped it unseen)."""
    d = one_slot()
    d.update([0, 0], [[0.1], [0.1]])
    assert d.negatives(0) == [1] and d.counts["initial_drops"] == 1 and d.counts["draws"] == 2
    assert d._queries[0].s0 == [None]  # the replacement's S₀ waits for its first use


def test_per_row_state_from_before_stop_50_is_refused():
    d = DHNM([5], DHNMConfig(k=1))
    state = {**d.state_dict(), "version": 1}
    with pytest.raises(ValueError, match="version 1 is per training row"):
        DHNM([5], DHNMConfig(k=1)).load_state_dict(state)
