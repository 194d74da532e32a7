"""The run of a study: check it, load its data, prepare its results folder, search (or serve the search, or run
a worker's share of it), then save the best model, evaluated once on the test split.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

import keras

from hpstudy import files
from hpstudy.engine import interrupt
from hpstudy.engine.progress import Progress
from hpstudy.engine.search import adapter, answered, checks, confirm, pruning
from hpstudy.engine.search.distributed import chief
from hpstudy.engine.search.distributed.roles import Role, is_chief, is_worker, keras_tuner_environment
from hpstudy.engine.search.distributed.worker import ChiefFinished, Heartbeat, wait_for_chief
from hpstudy.engine.search.hypermodel import load_checkpoint, load_data, make_hypermodel
from hpstudy.engine.search.tuner import StudyTuner
from hpstudy.engine.training import callbacks as callbacks_module, parallel
from hpstudy.errors import SearchError
from hpstudy.results import folder, trials
from hpstudy.results.layout import FORMAT, Layout, trial_number
from hpstudy.results.status import ENDED, SCORED, TrialStatus
from hpstudy.results.trials_table import TrialsTable
from hpstudy.study.spec import StudySpec
from hpstudy.text import exception_line


# ---------------------------------------------------------------- the search
def environment() -> dict:
    """Versions, backend and devices, for env.json."""
    import datetime
    import platform
    from importlib import metadata

    def version(package):
        """An installed package's version, or None."""
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None
    try:
        devices = keras.distribution.list_devices()
    except Exception:  # noqa: BLE001 - a backend without device listing still runs
        devices = ["cpu"]
    return {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "results_format": FORMAT,
        "backend": keras.backend.backend(),
        "devices": devices,
        **{name: version(name) for name in ("hpstudy", "keras", "keras-tuner", "tensorflow", "jax", "torch", "numpy")},
    }


def run(study: StudySpec, *, results_dir: str | Path = "results", overwrite: bool = False, verbose: bool = False,
        stream=None, memory_allowance_mib: float | None = None, role: Role | None = None) -> Layout:
    """Run (or resume) the study's search; returns its results folder. `verbose` adds Keras's epoch lines.

    With `memory_allowance_mib`, the search stops between two trials with FreshProcessNeeded once the process
    has grown by more than that since its first trial (resuming in a new process continues it exactly).

    With a `role`, this process is part of a distributed study: the chief serves the search and saves the best
    model; a worker runs the trials it is given, and ends with one line saying why. keras-tuner's environment
    variables say the same as `role` during the run, and are as they were after it.
    """
    worker = is_worker(role)
    if is_worker(role):       # first: a worker pointed at no chief says so, and gives up in bounded time
        wait_for_chief(role)
    root = Path(results_dir) / study.name
    # First the lock: a second run is refused at once. A write that finds the disk full, anywhere, is one line.
    with keras_tuner_environment(role), interrupt.handled(), files.no_room_is_one_line(root), \
            folder.locked(root, lock=not worker):
        study = checks.check(study)
        dataset = load_data(study)
        if not worker:           # the chief checked every build already
            checks.build_each(study, dataset.input_shape, dataset.num_classes)
        layout = folder.prepare(root, study, overwrite=overwrite and not worker)
        if is_worker(role):
            _run_worker(study, layout, dataset, stream, verbose, memory_allowance_mib, role)
        else:
            _run_search(study, layout, dataset, stream, verbose, memory_allowance_mib, role)
    return layout


def _run_worker(study: StudySpec, layout: Layout, dataset, stream, verbose: bool, memory_allowance_mib, role: Role):
    """A worker's share of the search, until the chief has no trial left for it or has finished the study."""
    if role.worker_id is None:
        raise ValueError("a worker's Role names its worker_id")
    with Heartbeat(layout, role.worker_id) as heartbeat:
        try:
            _search(study, layout, dataset, stream, verbose, memory_allowance_mib, role,
                    chief_finished=heartbeat.chief_finished)
            why = ""
        except ChiefFinished:
            why = "the chief has finished the study; "
    print(f"worker {role.worker_id}: {why}no more trials to run in {layout.root}", file=stream or sys.stdout,
          flush=True)


def _run_search(study: StudySpec, layout: Layout, dataset, stream, verbose: bool, memory_allowance_mib, role):
    """The search of a single process or a chief, then the best model, the table, the failure limit, confirm."""
    if is_chief(role):
        chief.chief_starting(layout)
    files.write_json(layout.env, environment())
    tuner = _search(study, layout, dataset, stream, verbose, memory_allowance_mib, role)
    _say_if_answered(tuner.oracle, stream)
    tuner.retention.prune(tuner.oracle, search_over=True)
    _save_best(tuner, layout, dataset)
    table = tuner.trials_table.write(known=tuner.oracle.trials)
    _save_importance(study, layout, table)
    _stop_if_failed(study, layout, table, len(tuner.oracle.failed_trials()))
    if study.search.confirm is not None and table.status.isin(SCORED).any():
        confirm.confirm(layout, dataset=dataset, stream=stream)


def _save_importance(study: StudySpec, layout: Layout, table) -> None:
    """The report's importance ranking of the finished search, computed once and kept in importance.json: the
    reports and the live view read it back instead of fitting the forests (and importing scikit-learn); they never
    write it."""
    from hpstudy.analysis import effects
    effects.study_importance(study, table, cache=layout.importance, save=True)


def _say_if_answered(oracle, stream) -> None:
    """search.until: answered: one line saying why the search stopped (answered, or the budget spent)."""
    until = getattr(oracle, "until", None)
    if until is not None:
        if oracle.stopped_because is None and oracle.hyperparameters.space:
            until.looks = oracle.looks()                       # the look at the budget's end
        reason = oracle.stopped_because or until.check()      # else the last round's verdicts
        print(until.stopped_line(len(oracle.trials), reason), file=stream or sys.stdout, flush=True)


def _stop_if_failed(study: StudySpec, layout: Layout, table, failed: int) -> None:
    """A search that reached its failure limit, or ended with no completed trial (so no best model), is an error."""
    completed = table.status.isin(SCORED).any()
    if failed < study.search.max_failed_trials and (completed or table.empty):
        return
    failed_rows = table.status == TrialStatus.FAILED
    reason = table.message[failed_rows].iloc[-1] if failed_rows.any() else ""
    limit = f"search.max_failed_trials: {study.search.max_failed_trials}"
    what = (f"stopped after {failed} failed trials in all ({limit})" if failed >= study.search.max_failed_trials
            else f"no trial completed ({failed} failed), so there is no best model")
    raise SearchError(f"{layout.root}: {what}; the last failed with: {reason}; every reason is in {layout.table}")


def _search(study: StudySpec, layout: Layout, dataset, stream, verbose: bool, memory_allowance_mib, role,
            chief_finished=None):
    """Make the study's tuner and run its search (or its part of a distributed one); returns the tuner.
    `chief_finished`: a worker's heartbeat's event, which ends its search with ChiefFinished."""
    tuner = _make_tuner(study, layout, dataset, stream, memory_allowance_mib, role, chief_finished)
    adapter.show_tracebacks(verbose)
    try:
        tuner.search(dataset.train.x, dataset.train.y, validation_data=(dataset.validation.x, dataset.validation.y),
                     callbacks=callbacks_module.study_callbacks(study.callbacks, layout.tensorboard),
                     verbose=2 if verbose else 0)
    finally:
        tuner.progress.close()
    return tuner


def _make_tuner(study: StudySpec, layout: Layout, dataset, stream, memory_allowance_mib, role, chief_finished=None):
    """The study's tuner: keras-tuner's, with hpstudy's behaviour, resuming what `layout` holds."""
    search = study.search
    kwargs = dict(search.options)
    if search.tuner == "hyperband":
        kwargs.setdefault("max_epochs", study.train.epochs)
        total = None
    else:
        # Nothing searched: one configuration, one trial (keras-tuner's oracles would only retry the same values).
        kwargs["max_trials"] = total = study.trial_limit()
    if search.tuner == "design":
        kwargs["question"] = study.question
        kwargs["until"] = _answered(study, layout, dataset, stream, role) if search.until == "answered" else None
    table = TrialsTable(layout)          # every trial file read here once; then only the trials that change
    done = int(table.update().status.isin(ENDED).sum())
    progress = Progress(total, search.objective, done=done, stream=stream)
    hypermodel = make_hypermodel(study, dataset)
    # keras-tuner prints "Reloading Tuner from ..." on resume; the progress line says it better.
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return adapter.make_tuner(
                search.tuner, StudyTuner, max_failed_trials=search.max_failed_trials, hypermodel=hypermodel,
                objective=adapter.objective(search.objective, search.minimize),
                # keras-tuner reads seed 0 as "no seed" (`seed or random...`): shift so every study seed counts.
                seed=search.seed + 1,
                executions_per_trial=search.executions_per_trial, directory=str(layout.root),
                project_name=layout.tuner.name, overwrite=False, study=study, layout=layout, progress=progress,
                memory_allowance_mib=memory_allowance_mib, trials_table=table, role=role,
                chief_finished=chief_finished,
                **parallel.strategy_arguments(study.train.distribution), **kwargs)
    except (ValueError, TypeError) as err:     # keras-tuner's own checks of search.options values
        progress.close()
        raise study.error("search.options", f"the {search.tuner} tuner refused them: {exception_line(err)}") from None


def _answered(study: StudySpec, layout: Layout, dataset, stream, role) -> answered.Answered:
    """search.until's stopping rule; in a single process it runs the seed repeats the question needs between
    rounds (see engine.search.answered) with a hypermodel of its own."""
    def repeat(numbers):
        confirm.repeat_trials(layout, numbers, answered.REPEAT_SEEDS, hypermodel=make_hypermodel(study, dataset),
                              dataset=dataset, stream=stream)
    return answered.Answered(layout, study, repeat=repeat if role is None else None)


def _save_best(tuner, layout: Layout, dataset) -> None:
    """Evaluate the best trial's model (its kept weights: search.checkpoint_epoch) once on the test split and save
    it (skipped if already done). A pruned trial is the best only when no trial completed."""
    best = [t for t in pruning.best_trials(tuner.oracle, layout, 1) if t.status == TrialStatus.COMPLETED]
    if not best:
        return
    trial = best[0]
    saved = trials.read_best(layout)
    number = trial_number(trial.trial_id)
    if saved.get("trial_id") == number and layout.best_model.is_file():
        return
    # Built from the hyperparameters and loaded with the trial's own checkpoint, not tuner.load_model: under
    # Hyperband that first loads the checkpoint of the trial it continued from, which may have been pruned.
    keras.backend.clear_session()
    model = load_checkpoint(tuner.hypermodel.build(trial.hyperparameters), tuner.checkpoint_file(trial.trial_id))
    test = model.evaluate(dataset.test.x, dataset.test.y, verbose=0, return_dict=True)
    # Create the optimizer's slots so the saved file matches what loading it builds (else Keras warns).
    model.optimizer.build(model.trainable_variables)
    tmp = files.temporary_beside(layout.best_model, ".tmp.keras")
    try:
        model.save(tmp)
        files.replace(tmp, layout.best_model)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    best_epoch, checkpoint_epoch = trials.epoch_from_step(trial.best_step), tuner.study.search.checkpoint_epoch
    files.write_json(layout.best, {
        "results_format": FORMAT,
        "trial_id": number,
        "objective": tuner.oracle.objective.name,
        "score": trial.score,
        "best_epoch": best_epoch,
        # Which weights best.keras and test_* are of (the score is the objective at best_epoch either way).
        "checkpoint_epoch": checkpoint_epoch,
        "weights_epoch": trials.weights_epoch(layout, number, checkpoint_epoch, best_epoch),
        "hyperparameters": {k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")},
        "test_loss": float(test["loss"]),
        "test_accuracy": float(test["accuracy"]),
        "class_names": list(dataset.class_names),
    })
