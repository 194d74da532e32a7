"""The Python API: verbs with keyword-only options (the most used re-exported by `hpstudy`), the same verbs the
command line is made of. Heavy modules (Keras, and so TensorFlow) are imported by the verbs that need them.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from hpstudy.engine.search.distributed.roles import Role, from_flags
from hpstudy.errors import HpstudyError, ResultsError
from hpstudy.lazy import import_quietly
from hpstudy.results import folder, trials
from hpstudy.results.lock import FolderLock
from hpstudy.study import options
from hpstudy.study import spec as spec_module
from hpstudy.study.spec import StudySpec

# The public verbs, and only they: what `from hpstudy.api import *` and an editor's completion offer.
__all__ = ["load_spec", "run", "Study", "load_study", "load_best", "confirm", "validate", "run_workers",
           "distributed_role", "report", "analyze", "serve", "export", "predict", "describe_models", "datasets",
           "dataset_info", "download"]


def distributed_role(role: str, *, bind: str | None = None, chief: str | None = None, worker_id: str | None = None,
                     worker_timeout: int | None = None, chief_timeout: int | None = None) -> Role:
    """The part this process takes in a study shared by several machines, for `run(role=...)`: "chief" (listening
    at `bind`, HOST:PORT, default 127.0.0.1:7940; `worker_timeout` seconds of a worker's silence before its trial
    goes to another) or "worker" (of the chief at `chief`, HOST:PORT, as `worker_id`, giving up on a chief it
    cannot reach after `chief_timeout` seconds). Checked as `hpstudy run --role ...` checks its flags."""
    return from_flags(role, bind=bind, chief=chief, worker_id=worker_id, worker_timeout=worker_timeout,
                      chief_timeout=chief_timeout)


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a study file (no Keras needed)."""
    return spec_module.load(path)


def run(study: str | Path | StudySpec, *, results_dir: str | Path = "results", max_trials: int | None = None,
        epochs: int | None = None, overwrite: bool = False, verbose: bool = False, stream=None,
        memory_allowance_mib: float | None = None, role: Role | None = None) -> "Study":
    """Run a study's search, resuming its results folder if it exists; returns the finished Study.

    `max_trials` and `epochs` override the study file (`epochs` also the epochs its train.overrides set);
    `overwrite` starts the folder over. With `memory_allowance_mib` the search stops with FreshProcessNeeded
    (between trials, everything saved) once the process has grown by more than that: call run again from a new
    process to continue. `role` makes this
    process the chief or a worker of a distributed study (see `distributed_role`).
    """
    max_trials, epochs = options.positive(max_trials, "--max-trials"), options.positive(epochs, "--epochs")
    if not isinstance(study, StudySpec):
        study = spec_module.load(study)
    study = with_flags(study, max_trials=max_trials, epochs=epochs)
    runner = import_quietly("hpstudy.engine.search.runner", verbose=verbose)
    layout = runner.run(study, results_dir=results_dir, overwrite=overwrite, verbose=verbose, stream=stream,
                        memory_allowance_mib=memory_allowance_mib, role=role)
    if role is None or role.name != "worker":
        # Ranked once here, so that `hpstudy report` reads the ranking instead of importing scikit-learn.
        from hpstudy.analysis import effects
        effects.importance(effects.completed(trials.read_trials(layout)), [t.name for t in study.tunables()],
                           cache=layout.importance)
    return Study(layout.root)


def with_flags(study: StudySpec, *, max_trials: int | None = None, epochs: int | None = None) -> StudySpec:
    """`study` with `hpstudy run`'s --max-trials and --epochs in place of its own search.max_trials and epochs
    (train.epochs and the epochs its train.overrides set: every trial's), checked like the file's own values."""
    if max_trials is None and epochs is None:
        return study
    raw = study.to_dict()
    if max_trials is not None:
        raw["search"]["max_trials"] = max_trials
    if epochs is not None:
        raw["train"]["epochs"] = epochs
        for override in raw["train"]["overrides"]:
            if "epochs" in override["set"]:
                override["set"]["epochs"] = epochs
    return spec_module.from_dict(raw, source=study.source)


def confirm(path: str | Path, *, top: int | None = None, seeds: int | None = None, stream=None) -> dict:
    """Train a finished study's top `top` configurations again with `seeds` new seeds each (defaults: the
    study's search.confirm, else 3 and 5), resuming the repeats already done; returns the summary best.json
    keeps (each configuration's intervals, the noise floor, whether the best is distinguishable)."""
    top, seeds = options.positive(top, "--top"), options.seeds(seeds)
    layout = folder.open_folder(path)
    confirm_module = import_quietly("hpstudy.engine.search.confirm")
    with FolderLock(layout):             # it writes repeats and best.json: not while a run uses the folder
        return confirm_module.confirm(layout, top=top, seeds=seeds, stream=stream)


def run_workers(study_path: str | Path, workers: int, *, results_dir: str | Path = "results",
                max_trials: int | None = None, epochs: int | None = None, overwrite: bool = False,
                verbose: bool = False, worker_timeout: int | None = None) -> int:
    """Run a study with a chief and `workers` worker processes on this machine, as `hpstudy run --workers`;
    returns the chief's exit code. `max_trials`, `epochs`, `overwrite` and `verbose` are `run`'s, given to every
    process; `worker_timeout` is the chief's (see `distributed_role`). A bad study or value stops here, before any
    process starts."""
    workers = options.positive(workers, "--workers")
    if workers is None:
        raise options.OptionError("--workers: expected a positive integer, got 'None'")
    max_trials, epochs = options.positive(max_trials, "--max-trials"), options.positive(epochs, "--epochs")
    worker_timeout = options.positive(worker_timeout, "--worker-timeout")
    if worker_timeout is not None:      # checked as the chief will check it, before any process starts
        from_flags("chief", worker_timeout=worker_timeout)
    from hpstudy.engine.search.distributed import launcher
    name = load_spec(study_path).name
    return launcher.launch(str(study_path), workers, results_dir=str(results_dir), name=name, max_trials=max_trials,
                           epochs=epochs, overwrite=bool(overwrite), verbose=bool(verbose),
                           worker_timeout=worker_timeout)


def validate(study_path: str | Path) -> tuple[StudySpec, int]:
    """Check a study file completely without training: (the study with defaults filled, models built)."""
    study = load_spec(study_path)
    checks = import_quietly("hpstudy.engine.search.checks")
    hypermodel = import_quietly("hpstudy.engine.search.hypermodel")
    study = checks.check(study)
    input_shape, num_classes = hypermodel.data_shape(study)
    return study, checks.build_each(study, input_shape, num_classes, pretrained=False)


class Study:
    """A study's results folder, read on demand (a running study can be read too)."""

    def __init__(self, path: str | Path):
        self.layout = folder.open_folder(path)
        self.path = self.layout.root
        self.spec = folder.study_of(self.layout)

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
        """Per-epoch metrics of one trial (its number, as in the trials table), epochs counted from 1."""
        history = trials.read_history(self.layout, trial_id, execution)
        if history is None:
            path = self.layout.history(trial_id, execution)
            raise ResultsError(f"{path}: no history for trial {trial_id!r} (execution {execution})")
        return history

    def model(self, trial_id: int | str, *, dataset=None):
        """Trial `trial_id`'s model with its kept weights (search.checkpoint_epoch), compiled (the best trial's is
        best.keras; another's is rebuilt from its hyperparameters and keras-tuner's checkpoint). Completed trials
        only."""
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
        """(the plots module, this study as a report sees it: trials, effects, repeats, scales)."""
        from hpstudy.report import plots, tables
        return plots, tables.build([self.path]).studies[0]

    def plot_effects(self, names: list[str] | None = None):
        """Per searched hyperparameter (`names`: some of them): every trial's objective at its value, the raw mean
        and the estimate adjusted for the others with its 95% interval, the verdict in the title."""
        plots, study = self._plots()
        return plots.plot_effects(study, names)

    def plot_parallel(self):
        """Every completed trial in parallel coordinates (an axis per searched hyperparameter), coloured by the
        objective."""
        plots, study = self._plots()
        return plots.plot_parallel(study)

    def plot_importance(self):
        """The importance ranking as bars with its 95% bootstrap interval (at least 4 completed trials)."""
        plots, study = self._plots()
        return plots.plot_importance(study)

    def plot_budget(self):
        """Each question value's expected best score against its number of trials, with a 95% bootstrap band
        (the values compared at equal budgets)."""
        plots, study = self._plots()
        return plots.plot_budget(study)

    def plot_history(self):
        """Each trial's score and the best so far, against trial number and training time."""
        plots, study = self._plots()
        return plots.plot_history(study)

    def plot_pareto(self):
        """The objective against parameters, FLOPs and seconds per trial, the Pareto front marked."""
        plots, study = self._plots()
        return plots.plot_pareto(study)

    def plot_curves(self, top: int = 3):
        """Loss and accuracy per epoch (train and validation) of the `top` best trials, best and last epoch
        marked."""
        plots, study = self._plots()
        return plots.plot_curves(study, top=top)

    def plot_repeats(self):
        """The confirmed configurations' seed repeats: each repeat, the mean with its 95% interval, the search's
        own score."""
        plots, study = self._plots()
        return plots.plot_repeats(study)

    def ranked(self) -> list[str]:
        """Completed trials' numbers, best first (rank 0 is the best trial of best.json)."""
        return trials.ranked_trials(self.layout)

    def __repr__(self) -> str:
        return f"Study({str(self.path)!r})"

    def _repr_html_(self) -> str:
        """How a notebook shows the study: its answer, its top trials (see hpstudy.report.notebook)."""
        from hpstudy.report import notebook
        return notebook.summary_html(self.path)


def load_study(path: str | Path) -> Study:
    """Open a results folder."""
    return Study(path)


def load_best(path: str | Path, rank: int = 0):
    """The `rank`-th best model of a study (0: the best, best.keras), compiled, with its trial's kept weights (its
    best epoch's, or its last's with search.checkpoint_epoch: last).

    Rank 0 is loaded in Keras's safe mode; a lower-ranked trial's model is rebuilt from its hyperparameters
    and loaded with keras-tuner's checkpoint (the study's data is loaded when it
    standardizes pixels: the statistics are not in the checkpoint).
    """
    rank = options.rank(rank)
    layout = folder.open_folder(path)
    if rank != 0:
        trials.trial_at_rank(layout, rank)       # a rank past the last is told before Keras is imported
    return import_quietly("hpstudy.trained.models").load_best(layout, rank)


def export(path: str | Path, to: str | Path, *, rank: int = 0):
    """Write the `rank`-th best model of a study to `to` (a .keras file) that plain Keras loads; returns what
    was written (file, trial, input shape, class names)."""
    rank = options.rank(rank)
    return import_quietly("hpstudy.trained.export").export(path, to, rank=rank)


def predict(path: str | Path, images: list, *, top: int = 3, rank: int = 0) -> list:
    """The `top` most probable classes of each image file by the `rank`-th best model of a study."""
    images, top, rank = options.some(images, "IMAGE", "image files"), options.positive(top, "--top"), options.rank(rank)
    from hpstudy.trained import predict as predict_module
    return predict_module.predict(path, images, top=top, rank=rank)


def report(paths: list, *, format: str = "markdown", sort: str | None = None, top: int | None = None,
           best: int | None = None, output: str | Path | None = None) -> str:
    """The report of results folders `paths` as text in `format`. Markdown and html written to `output` show
    every study's figures (`plots.figures`: markdown links PNGs in `<output>_figures/`, html embeds them), and
    `best` models of each study are evaluated on the test split (default: 1 for those, else 0), their figures
    next to `output`. The text is returned, and written to `output` when given (replaced whole, never through a
    link, never onto a results folder's records: `results.outputs`)."""
    paths, format = options.some(paths, "PATH", "results folders"), options.choice(format, "--format", options.FORMATS)
    top, best = options.positive(top, "--top"), options.count(best, "--best")
    from hpstudy.report import pages, tables
    from hpstudy.results import outputs
    if output and not Path(output).parent.is_dir():   # before any (slow) evaluation
        raise HpstudyError(f"{output}: cannot write the report (no folder {Path(output).parent})")
    if output:       # before any work: never onto a results folder's records, never through a link
        outputs.check(output, "the report")
        outputs.check(Path(output).with_name(Path(output).stem + "_figures"), "the report's figures",
                      folder=True)
    built = tables.build(paths, sort=sort, top=top)
    best = best if best is not None else int(bool(output) and format in ("markdown", "html"))
    if best < 0 or (best and (not output or format not in ("markdown", "html"))):
        raise HpstudyError("--best: evaluating models needs --output FILE and --format markdown or html "
                           "(the figures are written next to the report)")
    figures = Path(output).with_name(Path(output).stem + "_figures") if output else None
    if output and format in ("markdown", "html"):     # markdown links PNG files, html embeds them
        built.folder = Path(output).parent
        tables.add_figures(built, figures if format == "markdown" else None)
    if best:
        built.best = tables.evaluate_best(paths, figures, best)
    text = pages.render(built, format)
    if best and format == "markdown":
        text += "\n" + pages.best_models_markdown(built, Path(output).parent)
    if output:
        outputs.write_text(output, text, "the report")
    return text


def analyze(trials: pd.DataFrame | str | Path, objective: str, *, direction: str | None = None,
            hyperparameters: list[str] | None = None, log=(), question=(),
            repeats: pd.DataFrame | str | Path | None = None):
    """The report's analysis of any tool's trials table (a DataFrame, or a CSV file): a column per hyperparameter,
    `objective`'s column, optional `status` (rows other than COMPLETED are left out) and `trial_id`; `repeats`:
    seed repeats as rows of trial_id, seed and the objective. Returns a `report.analyze.Analysis`: `.effects` are
    the JSON report's effect records, `.render(format)` the report, `str()` its answer. No Keras is imported."""
    from hpstudy.report import analyze as analyze_module
    options = {"direction": direction, "hyperparameters": hyperparameters, "log": log, "question": question}
    if isinstance(trials, (str, Path)):
        return analyze_module.analyze_files(trials, objective, repeats=repeats, **options)
    if isinstance(repeats, (str, Path)):
        repeats = analyze_module.read_table(repeats)
    return analyze_module.analyze(trials, objective, repeats=repeats, **options)


def serve(paths: list, *, host: str = "127.0.0.1", port: int = 8765, stream=None) -> None:
    """Serve a live web page of results folders `paths` at http://`host`:`port`/ until Ctrl-C: each study's
    progress, running trials with their curves so far, trials table and figures, refreshed as its trial files
    change. Read only (no lock taken, nothing written); a bad folder or a port in use is one HpstudyError, any
    host but loopback a warning on stderr. Says where it listens on `stream` (stdout)."""
    paths, port = options.some(paths, "PATH", "results folders"), options.port(port)
    if port is None:
        raise options.OptionError("--port: expected a port in 0-65535, got 'None'")
    from hpstudy.serve import server
    server.serve(list(paths), host=host, port=port, stream=stream)


def describe_models(names: list[str] = ()) -> list[tuple[str, str, list[dict]]]:
    """(name, description, one row per option) of each model builder named (default: all)."""
    models = import_quietly("hpstudy.models")
    out = []
    for name in names or sorted(models.BUILDERS):
        models.builder(name)    # an unknown name: one line listing the known ones
        out.append((name, *models.describe(name)))
    return out


def datasets(data_dir: str | None = None) -> tuple[Path, pd.DataFrame]:
    """(the cache folder, one row per dataset: where its data is or goes, whether it is there, decoded copies)."""
    from hpstudy.data import catalog
    return catalog.cache_root(), catalog.listing(data_dir)


def dataset_info(name: str, *, data_dir: str | None = None, image_size: int | None = None,
                 label_mode: str | None = None) -> tuple[str, str]:
    """(split sizes, images per class and split) of a dataset, as text."""
    label_mode = options.choice(label_mode, "--label-mode", options.LABEL_MODES)
    image_size = options.image_size(image_size)
    from hpstudy import data
    from hpstudy.data import catalog
    dataset = data.load(name, data_dir=data_dir, image_size=image_size, download=False, label_mode=label_mode)
    return catalog.summary(dataset), catalog.class_counts(dataset).to_string()


def download(name: str, dest: str | None = None, *, slug: str | None = None) -> Path:
    """Download a dataset (cinic10 from Kaggle, from `slug` if given); returns the folder it is in."""
    from hpstudy import data
    if slug is not None and name != "cinic10":
        raise HpstudyError("--slug: only for cinic10, which comes from Kaggle")
    return data.download(name, dest, **({"slug": slug} if slug is not None else {}))
