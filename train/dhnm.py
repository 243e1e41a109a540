"""Dynamic hard-negative mining (paper §3.4, Eq. 5–6; notes §5.1 and §5.3).

Each query q has a ranked candidate pool (mined before training, see train/mining.py) and K slots, each holding
one candidate. For every slot the cosine S₀ is recorded the first time its negative is used. After each loss:

    S₀ < 0.4                        -> replace at once (too easy from the start)
    1.2 · S < S₀  and  S < 0.7       -> replace (the negative stopped being hard)
    otherwise                       -> keep

A replaced slot takes the next unused candidate of q's pool, which the loader serves the next time q is drawn.
S is the query–negative cosine the loss already computed (``retrieval_info_nce`` returns it detached), so the rule
needs no extra forward pass.

Choices where the paper is silent (docs/training-supervised.md):
* The top ``skip_top`` (default 3) ranks of every pool are never used: they are the likeliest false negatives
  (v1 skipped 10 on far larger pools). Slot j starts at rank skip_top + j; replacements continue in rank order.
  A query may start earlier (``starts``): the supervised stage puts a dataset's own negative right after the
  skipped ranks, and where fewer than skip_top were mined it starts there, so the given negative is still served.
* Pool exhaustion: when no unused candidate is left the slot keeps its current negative, is marked exhausted
  (counted once) and is not checked again.
* Slots beyond a short pool stay empty (the loss masks them); NaN similarities are skipped.
* State is per query, as the paper's "the next time that query appears": the supervised stage gives rows with
  the same query text and the same pool one id (TrecQA's rows are (question, answer) pairs, several per question).
  Rows of one batch are applied in order; a query drawn twice in one batch is updated once, with its first row's
  cosines (its rows were served the same negatives). Before stop 50 state was per row: a negative dropped for one
  row of a question was still served through its other rows.
* ``static`` mode (ablation) serves the same initial slots and never replaces anything.

State is a JSON-able dict (``state_dict`` / ``load_state_dict``): floats round-trip exactly, so a resumed run
makes the same decisions as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MODES = ("dynamic", "static")
STATE_VERSION = 2  # 1: state per training row (before stop 50); 2: per query
# draws: query rows seen; used: first uses of a negative that a replacement put in a slot (a replacement only
# matters once its query is drawn again, so "used" is the count that says DHNM acted on training).
COUNTERS = ("draws", "checked", "kept", "initial_drops", "decay_replacements", "exhausted", "used")


@dataclass
class DHNMConfig:
    """Rule thresholds (paper values) and the pool offset; ``k`` is the number of hard negatives per query."""

    k: int = 7
    mode: str = "dynamic"
    init_threshold: float = 0.4
    decay_ratio: float = 1.2
    max_current: float = 0.7
    skip_top: int = 3

    def __post_init__(self) -> None:
        """Types too: a string threshold (a TOML "0.4", an unparsable --set) failed at the first step, a nan one
        never dropped a negative, `skip_top = true` was 1 (before stop 46)."""
        if self.mode not in MODES:
            raise ValueError(f"DHNM mode must be one of {MODES}, got {self.mode!r}")
        for name in ("k", "skip_top"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"DHNM {name} must be an integer >= 0, got {value!r}")
        for name in ("init_threshold", "decay_ratio", "max_current"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"DHNM {name} must be a finite number, got {value!r}")
        if self.decay_ratio <= 0:
            raise ValueError(f"DHNM decay_ratio must be positive, got {self.decay_ratio}")
        for name in ("init_threshold", "max_current"):  # compared with cosines (before stop 70, a walk: 4 for 0.4
            # dropped every negative at its first use, and max_current = -1.5 never let the decay rule fire; the
            # ends, 1 and -1, are taken and as degenerate)
            if not -1.0 <= (value := getattr(self, name)) <= 1.0:
                raise ValueError(f"DHNM {name} is compared with cosines and must lie in [-1, 1], got {value!r}")


@dataclass
class _Query:
    """Per-query state: pool index per slot (None = empty), S₀ per slot, exhausted flags, next unused rank."""

    ptr: list[int | None]
    s0: list[float | None]
    exhausted: list[bool]
    next: int


class DHNM:
    """Slot bookkeeping for every query of one retrieval dataset; ``pool_sizes[q]`` = candidates of query q,
    ``starts[q]`` = pool index of its first served candidate (default: ``skip_top`` for every query)."""

    def __init__(self, pool_sizes: Sequence[int], config: DHNMConfig | None = None,
                 starts: Sequence[int] | None = None) -> None:  # fmt: skip
        self.config = config or DHNMConfig()
        self.pool_sizes = list(pool_sizes)
        self.starts = [self.config.skip_top] * len(self.pool_sizes) if starts is None else list(starts)
        if len(self.starts) != len(self.pool_sizes):
            raise ValueError(f"{len(self.starts)} start ranks for {len(self.pool_sizes)} pools")
        self._queries: dict[int, _Query] = {}
        self.counts = dict.fromkeys(COUNTERS, 0)

    @property
    def replacements(self) -> int:
        return self.counts["initial_drops"] + self.counts["decay_replacements"]

    def _state(self, qid: int) -> _Query:
        state = self._queries.get(qid)
        if state is None:
            k, start, n = self.config.k, self.starts[qid], self.pool_sizes[qid]
            ptr = [start + j if start + j < n else None for j in range(k)]
            state = _Query(ptr=ptr, s0=[None] * k, exhausted=[False] * k, next=start + k)
            self._queries[qid] = state
        return state

    def negatives(self, qid: int) -> list[int | None]:
        """Pool indices of q's K current hard negatives (None for an empty slot)."""
        if not 0 <= qid < len(self.pool_sizes):
            raise IndexError(f"query id {qid} outside the {len(self.pool_sizes)} pools")
        return list(self._state(qid).ptr)

    def update(self, qids: Sequence[int], sims: Any) -> int:
        """Apply the rule to a batch: ``sims[b][k]`` = cos(query qids[b], its slot-k negative), detached
        (tensor, array or nested lists). Returns the number of replacements made by this call."""
        if self.config.mode == "static":
            self.counts["draws"] += len(qids)
            return 0
        rows = sims.tolist() if hasattr(sims, "tolist") else sims
        if len(rows) != len(qids):  # refused before anything is counted or applied
            raise ValueError(f"{len(rows)} similarity rows for {len(qids)} queries")
        self.counts["draws"] += len(qids)
        before, done = self.replacements, set()
        for qid, row in zip(qids, rows, strict=True):
            if qid in done:  # the same query again: its first row's negatives were these, already judged
                continue
            done.add(qid)
            state = self._state(int(qid))
            for slot, s in enumerate(row[: self.config.k]):
                if state.ptr[slot] is None or state.exhausted[slot] or math.isnan(s):
                    continue
                self.counts["checked"] += 1
                s0 = state.s0[slot]
                if s0 is None:
                    state.s0[slot] = s
                    if state.ptr[slot] >= self.starts[qid] + self.config.k:  # not an initial slot
                        self.counts["used"] += 1
                    if s < self.config.init_threshold:
                        self._advance(qid, state, slot, "initial_drops")
                    else:
                        self.counts["kept"] += 1
                elif self.config.decay_ratio * s < s0 and s < self.config.max_current:
                    self._advance(qid, state, slot, "decay_replacements")
                else:
                    self.counts["kept"] += 1
        return self.replacements - before

    def _advance(self, qid: int, state: _Query, slot: int, reason: str) -> None:
        if state.next < self.pool_sizes[qid]:
            state.ptr[slot], state.s0[slot] = state.next, None
            state.next += 1
            self.counts[reason] += 1
        else:
            state.exhausted[slot] = True
            self.counts["exhausted"] += 1

    def stats(self) -> dict[str, int | float]:
        """Counters for the metrics log (cumulative since the start of training, resume included) and the rates
        a summary needs: replacements per checked slot, and draws per distinct query seen."""
        seen = len(self._queries)
        return {**self.counts, "replacements": self.replacements, "queries_seen": seen,
                "replacement_rate": self.replacements / self.counts["checked"] if self.counts["checked"] else 0.0,
                "draws_per_query": self.counts["draws"] / seen if seen else 0.0}  # fmt: skip

    def coverage(self) -> dict[str, int | float]:
        """How many of the K slots the pools fill at the start: a pool shorter than its start rank + K leaves slots
        empty, so a run whose pools are shallow trains with fewer hard negatives than K says (audit, stop 36)."""
        k = self.config.k
        filled = [min(k, max(n - start, 0)) for n, start in zip(self.pool_sizes, self.starts, strict=True)]
        return {"queries": len(filled), "mean_initial_slots": sum(filled) / len(filled) if filled else 0.0,
                "queries_short_of_k": sum(f < k for f in filled), "queries_without_hard_negative":
                sum(f == 0 for f in filled) if k else 0}  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: config, counters and every touched query's slots."""
        return {
            "version": STATE_VERSION,
            "config": dataclasses.asdict(self.config),
            "n_queries": len(self.pool_sizes),
            "counts": dict(self.counts),
            "queries": {str(q): dataclasses.asdict(s) for q, s in sorted(self._queries.items())},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict``; refuses a state from a different rule, K, offset or pool set."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"DHNM state of version {state.get('version')} is per training row (before stop 50); this "
                             f"code keeps it per query (version {STATE_VERSION}): train afresh into another output_dir")
        saved = state.get("config", {})
        ours = dataclasses.asdict(self.config)
        if saved != ours:
            diff = {key: (saved.get(key), ours[key]) for key in ours if saved.get(key) != ours[key]}
            raise ValueError(f"DHNM state was saved with another config (saved, current): {diff}")
        if state.get("n_queries") != len(self.pool_sizes):
            raise ValueError(f"DHNM state covers {state.get('n_queries')} queries, pools have {len(self.pool_sizes)}")
        self.counts = {**dict.fromkeys(COUNTERS, 0), **state["counts"]}
        self._queries = {int(q): _Query(**s) for q, s in state["queries"].items()}
