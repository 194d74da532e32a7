"""A study's results read back in Python: `Study` (a results folder read on demand: its trials, best trial,
histories, models, seed repeats and figures), `load_study` and `load_best`; `hpstudy.api` exports them."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from hpstudy.errors import ResultsError
from hpstudy.lazy import import_quietly
from hpstudy.results import folder, trials
from hpstudy.study import options


class Study:
    """A study's results folder, read on demand (a running study can be read too).

    Args:
        path: the study's results folder.

    Raises:
        ResultsError: not a results folder of hpstudy's, or a damaged one."""

    def __init__(self, path: str | Path):
        self.layout = folder.open_folder(path)
        self.path = self.layout.root
        self.spec = folder.study_of(self.layout)
        self._report: tuple | None = None     # (the folder's stamp, the report of it its plots draw from)

    @property
    def trials(self) -> pd.DataFrame:
        """One row per trial: id, status, each searched value (dotted names), metrics, seconds, size."""
        return trials.read_trials(self.layout)

    @property
    def best(self) -> dict:
        """The best trial: id, score, hyperparameters and test-set metrics (empty before any trial completes)."""
        return trials.read_best(self.layout)

    @property
    def best_hyperparameters(self) -> dict:
        """The best trial's hyperparameters, by their dotted names."""
        return self.best.get("hyperparameters", {})

    def history(self, trial_id: int | str, execution: int = 0) -> pd.DataFrame:
        """Per-epoch metrics of one trial, epochs counted from 1.

        Args:
            trial_id: the trial's number, as in the trials table.
            execution: which of the trial's executions (search.executions_per_trial), from 0.

        Returns:
            A DataFrame, one row per epoch.

        Raises:
            ResultsError: no history for that trial and execution."""
        history = trials.read_history(self.layout, trial_id, execution)
        if history is None:
            path = self.layout.history(trial_id, execution)
            raise ResultsError(f"{path}: no history for trial {trial_id!r} (execution {execution})")
        return history

    def model(self, trial_id: int | str, *, dataset=None):
        """Trial `trial_id`'s model with its kept weights (search.checkpoint_epoch), compiled (the best trial's is
        best.keras; another's is rebuilt from its hyperparameters and keras-tuner's checkpoint). Completed trials
        only.

        Args:
            trial_id: the trial's number, as in the trials table.
            dataset: the study's data, where the caller has loaded it already; None: loaded when the study
                standardizes pixels (the statistics are not in the checkpoint).

        Returns:
            The compiled keras.Model.

        Raises:
            ResultsError: no completed trial of that number, or its weights were not kept."""
        number = trials.completed_trial(self.layout, trial_id)
        models = import_quietly("hpstudy.trained.models")
        if number == self.best.get("trial_id") and self.layout.best_model.exists():
            return models.load_best(self.layout)
        return models.trial_model(self.layout, number, dataset=dataset)

    @property
    def repeats(self) -> pd.DataFrame:
        """The seed repeats of the confirmed configurations (search.confirm, `hpstudy confirm`): one row each,
        with its trial, seed, score, metrics at the best and last epoch, and test metrics."""
        return trials.read_repeats(self.layout)

    # ------------------------------------------------------------ figures (matplotlib Figures; see report.plots)
    def _plots(self):
        """(the plots module, this study as a report sees it: trials, effects, repeats, scales). The report is built
        once for every plot, and again only once the folder's records changed (a trial or a repeat ended)."""
        from hpstudy.report import plots, tables
        stamp = folder.stamp(self.layout)
        if self._report is None or self._report[0] != stamp:
            self._report = stamp, tables.build([self.path]).studies[0]
        return plots, self._report[1]

    def plot_effects(self, names: list[str] | None = None):
        """Per searched hyperparameter: every trial's objective at its value, the raw mean and the estimate adjusted for
        the others with its 95% interval, the verdict in the title.

        Args:
            names: some of the searched hyperparameters; None: all.

        Returns:
            A matplotlib Figure.

        Raises:
            NothingToPlot: an HpstudyError saying why there is nothing to show."""
        plots, study = self._plots()
        return plots.plot_effects(study, names)

    def plot_parallel(self):
        """Every completed trial in parallel coordinates (an axis per searched hyperparameter), coloured by the
        objective.

        Returns:
            A matplotlib Figure.

        Raises:
            NothingToPlot: an HpstudyError saying why there is nothing to show."""
        plots, study = self._plots()
        return plots.plot_parallel(study)

    def plot_importance(self):
        """The importance ranking as bars with its 95% interval (at least 4 completed trials).

        Returns:
            A matplotlib Figure.

        Raises:
            NothingToPlot: an HpstudyError saying why there is nothing to show."""
        plots, study = self._plots()
        return plots.plot_importance(study)

    def plot_budget(self):
        """Each question value's expected best score against its number of trials, with a 95% bootstrap band (the
        values compared at equal budgets).

        Returns:
            A matplotlib Figure.

        Raises:
            NothingToPlot: an HpstudyError saying why there is nothing to show."""
        plots, study = self._plots()
        return plots.plot_budget(study)

    def plot_history(self):
        """Each trial's score and the best so far, against trial number and training time.

        Returns:
            A matplotlib Figure.

        Raises:
            NothingToPlot: an HpstudyError saying why there is nothing to show."""
        plots, study = self._plots()
        return plots.plot_history(study)

    def plot_pareto(self):
        """The objective against parameters, FLOPs and seconds per trial, the Pareto front marked.

        Returns:
            A matplotlib Figure.

        Raises:
            NothingToPlot: an HpstudyError saying why there is nothing to show."""
        plots, study = self._plots()
        return plots.plot_pareto(study)

    def plot_curves(self, top: int = 3):
        """Loss and accuracy per epoch (train and validation) of the best trials, best and last epoch marked.

        Args:
            top: how many of the best trials.

        Returns:
            A matplotlib Figure.

        Raises:
            NothingToPlot: an HpstudyError saying why there is nothing to show."""
        plots, study = self._plots()
        return plots.plot_curves(study, top=top)

    def plot_repeats(self):
        """The confirmed configurations' seed repeats: each repeat, the mean with its 95% interval, the search's own
        score.

        Returns:
            A matplotlib Figure.

        Raises:
            NothingToPlot: an HpstudyError saying why there is nothing to show."""
        plots, study = self._plots()
        return plots.plot_repeats(study)

    def ranked(self) -> list[str]:
        """Completed trials' numbers, best first (rank 0 is the best trial of best.json).

        Returns:
            The trial numbers, as text."""
        return trials.ranked_trials(self.layout)

    def __repr__(self) -> str:
        return f"Study({str(self.path)!r})"

    def _repr_html_(self) -> str:
        """How a notebook shows the study: its answer, its top trials (see hpstudy.report.notebook)."""
        from hpstudy.report import notebook
        return notebook.summary_html(self.path)


def load_study(path: str | Path) -> Study:
    """Open a results folder.

    Args:
        path: the study's results folder.

    Returns:
        Its Study.

    Raises:
        ResultsError: not a results folder of hpstudy's, or a damaged one."""
    return Study(path)


def load_best(path: str | Path, rank: int = 0):
    """The `rank`-th best model of a study, compiled, with its trial's kept weights (its best epoch's, or its last's
    with search.checkpoint_epoch: last).

    Rank 0 is loaded in Keras's safe mode; a lower-ranked trial's model is rebuilt from its hyperparameters
    and loaded with keras-tuner's checkpoint (the study's data is loaded when it
    standardizes pixels: the statistics are not in the checkpoint).

    Args:
        path: the study's results folder.
        rank: 0 the best trial's model (best.keras), 1 the second best's, ...

    Returns:
        The compiled keras.Model.

    Raises:
        ResultsError: no trial of that rank, weights that were not kept, or a damaged folder."""
    rank = options.required(options.rank(rank), "--rank", options.RANK)
    layout = folder.open_folder(path)
    if rank != 0:
        trials.trial_at_rank(layout, rank)       # a rank past the last is told before Keras is imported
    return import_quietly("hpstudy.trained.models").load_best(layout, rank)
