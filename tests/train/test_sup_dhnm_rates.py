"""DHNM's per-task rates: draws, replacements per checked slot, and replaced negatives that training used.

A replacement only changes training when its query is drawn again; ``used`` counts exactly those first uses, so a
run whose queries are each drawn once reports replacements but zero used (the audit's finding on Chinese
retrieval), and one whose queries come back reports both.
"""

from __future__ import annotations

from train.dhnm import DHNM, DHNMConfig


def test_a_replacement_counts_as_used_only_when_its_query_comes_back():
    d = DHNM([10, 10], DHNMConfig(k=2, skip_top=1))
    d.update([0, 1], [[0.3, 0.5], [0.5, 0.5]])  # query 0 slot 0 dropped at first use (S0 < 0.4)
    stats = d.stats()
    assert (stats["draws"], stats["checked"], stats["replacements"], stats["used"]) == (2, 4, 1, 0)
    assert stats["replacement_rate"] == 1 / 4 and stats["draws_per_query"] == 1.0
    assert d.negatives(0) == [3, 2]  # slot 0 took rank skip_top + k = 3, the first non-initial candidate
    d.update([0], [[0.45, 0.5]])  # query 0 again: its slot-0 negative (rank 3) is used for the first time
    stats = d.stats()
    assert (stats["draws"], stats["checked"], stats["used"], stats["replacements"]) == (3, 6, 1, 1)
    assert stats["draws_per_query"] == 3 / 2
    d.update([0], [[0.45, 0.5]])  # a second use of the same negative is not a new first use
    assert d.stats()["used"] == 1


def test_static_mode_counts_draws_but_never_checks_or_replaces():
    d = DHNM([5], DHNMConfig(k=1, mode="static", skip_top=0))
    d.negatives(0)  # the loader asks for the slots before the loss, as in the stage
    for _ in range(3):
        assert d.update([0], [[0.0]]) == 0
    stats = d.stats()
    assert (stats["draws"], stats["checked"], stats["replacements"], stats["used"]) == (3, 0, 0, 0)
    assert stats["replacement_rate"] == 0.0 and stats["draws_per_query"] == 3.0


def test_old_states_without_the_new_counters_load_with_zeros():
    d = DHNM([4], DHNMConfig(k=1, skip_top=0))
    d.update([0], [[0.2]])
    state = d.state_dict()
    state["counts"] = {k: v for k, v in state["counts"].items() if k not in ("draws", "used")}
    e = DHNM([4], DHNMConfig(k=1, skip_top=0))
    e.load_state_dict(state)
    assert e.counts["draws"] == e.counts["used"] == 0 and e.counts["initial_drops"] == 1
