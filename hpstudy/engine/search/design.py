"""`search.tuner: design`, the Deep Learning Tuning Playbook's recipe as a keras-tuner oracle.

The `question:` hyperparameters are scientific: each cell (a combination of their values; a searched range
counts as `bins` equal bins of its sampled scale) gets an equal share of the trials, visited in turn. The others
are nuisance: drawn from one scrambled Sobol sequence, the same point for every cell in a round.
"""
from __future__ import annotations

import itertools
import warnings

import keras_tuner as kt
import numpy as np
from scipy.stats import qmc

DEFAULT_BINS = 3            # a searched range in the question: low, middle and high thirds of its sampled scale


def levels(hp, bins: int = DEFAULT_BINS) -> list:
    """The design's levels of scientific hyperparameter `hp`: its values (a choice, a boolean), or for a searched
    range `bins` intervals (low, high) of its sampled scale, as probabilities in [0, 1)."""
    if isinstance(hp, kt.engine.hyperparameters.Choice):
        return list(hp.values)
    if isinstance(hp, kt.engine.hyperparameters.Boolean):
        return [False, True]
    if isinstance(hp, kt.engine.hyperparameters.Fixed):
        return [hp.value]
    return [(b / bins, (b + 1) / bins) for b in range(bins)]


def cell_order(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Every cell of a grid of `shape` once, each next the cell whose levels were used least so far (ties: the
    first in grid order): any prefix of a round is as balanced, on each hyperparameter, as it can be."""
    remaining = list(itertools.product(*(range(n) for n in shape)))
    used = [np.zeros(n, int) for n in shape]
    order = []
    while remaining:
        best = min(remaining, key=lambda cell: sum(int(used[d][k]) for d, k in enumerate(cell)))
        remaining.remove(best)
        order.append(best)
        for d, k in enumerate(best):
            used[d][k] += 1
    return order


def sobol_point(index: int, dimensions: int, seed: int) -> np.ndarray:
    """Point `index` of the scrambled Sobol sequence of `dimensions` seeded by `seed` (in [0, 1)^dimensions)."""
    if dimensions == 0:
        return np.zeros(0)
    sampler = qmc.Sobol(dimensions, scramble=True, seed=seed)
    with warnings.catch_warnings():      # one point at a time: Sobol's power-of-two balance holds per full round
        warnings.simplefilter("ignore", UserWarning)
        return sampler.random(index + 1)[-1]


class DesignOracle(kt.Oracle):
    """Balanced scientific cells, quasi-random nuisance within each (see the module's docstring). Trial n's values
    depend on n and the seed only, so a resumed or distributed study continues one plan."""

    def __init__(self, objective=None, max_trials=None, seed=None, question=(), bins=DEFAULT_BINS, until=None,
                 **kwargs):
        super().__init__(objective=objective, max_trials=max_trials, seed=seed, **kwargs)
        self.question, self.bins = tuple(question), int(bins)
        # search.until: answered (engine.search.answered.Answered): asked before each round; its reason once it stops.
        self.until, self.stopped_because = until, None

    def cells(self) -> tuple[list, list[tuple]]:
        """(the scientific hyperparameters' levels, the cells in the order a round visits them)."""
        scientific = [self._hp(name) for name in self.question]
        per = [levels(hp, self.bins) for hp in scientific]
        return per, cell_order(tuple(len(p) for p in per))

    def looks(self) -> int:
        """How often `until` may be asked: once per round the budget allows (the last at the budget's end)."""
        return max(1, -(-int(self.max_trials or 1) // len(self.cells()[1])))

    def _hp(self, name: str):
        return next(hp for hp in self.hyperparameters.space if hp.name == name)

    def plan(self, index: int) -> dict:
        """The values of the `index`-th trial of the plan (0-based)."""
        per, order = self.cells()
        round_, cell = divmod(index, len(order))
        ranged = [d for d, levels_ in enumerate(per) if isinstance(levels_[0], tuple)]
        names = [hp.name for hp in self.hyperparameters.space]
        nuisance = [n for n in names if n not in self.question]
        point = sobol_point(round_, len(nuisance) + len(ranged), (self.seed or 0) + 7919)
        chosen = {}
        for d, name in enumerate(self.question):
            level = per[d][order[cell][d]]
            if isinstance(level, tuple):          # a bin of a range: a quasi-random place inside it
                u = point[len(nuisance) + ranged.index(d)]
                level = self._hp(name).prob_to_value(level[0] + u * (level[1] - level[0]))
            chosen[name] = level
        hps = kt.HyperParameters()
        for hp in self.hyperparameters.space:
            hps.merge([hp])
            if hps.is_active(hp):
                hps.values[hp.name] = chosen[hp.name] if hp.name in chosen else \
                    hp.prob_to_value(float(point[nuisance.index(hp.name)]))
        return hps.values

    def populate_space(self, trial_id):
        """keras-tuner's call for a new trial's values: the plan's trial number `trial_id`; no more trials once
        `until` finds the question answered at the start of a round."""
        index = int(trial_id)
        if self.until is not None and self.stopped_because is None and index and index % len(self.cells()[1]) == 0:
            self.until.looks = self.looks()
            self.stopped_because = self.until.check()
        if self.stopped_because is not None:
            return {"status": kt.engine.trial.TrialStatus.STOPPED, "values": None}
        return {"status": kt.engine.trial.TrialStatus.RUNNING, "values": self.plan(index)}

    def get_state(self):
        """keras-tuner's state, with the design's question and bins (checked on reload)."""
        return {**super().get_state(), "design": {"question": list(self.question), "bins": self.bins}}
