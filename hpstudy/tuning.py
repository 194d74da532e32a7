"""The keras-tuner adapter: the only code that sees `hp`.

`check()` finishes validating a study against what needs Keras (builder signatures, tuner
signatures, one build of each model); `run()` runs the search in the study's results folder,
resuming whatever is already there, then evaluates the best model once on the test split.
"""
from __future__ import annotations

import contextlib
import dataclasses
import inspect
import io
import itertools
import math
import os
import warnings
from pathlib import Path

import keras
import keras_tuner as kt

from hpstudy import callbacks as callbacks_module
from hpstudy import data as data_module
from hpstudy import devices, distributed, effects, models, tuners
from hpstudy import preprocess
from hpstudy import results, retention
from hpstudy import training
from hpstudy import spec as spec_module
from hpstudy.errors import DataError, ModelError, SearchError, SpecError
from hpstudy.progress import Progress
from hpstudy.spec import StudySpec, Tune
from hpstudy.values import close_match, shown
from hpstudy.studytuner import failed_trials, tuner_class
from hpstudy.tuners import TUNERS

DEFAULT_MAX_TRIALS = 10           # random and bayesian, when the study gives none
# Tuner arguments hpstudy sets itself from the study file; the rest of a signature may go in search.options.
_SET_BY_HPSTUDY = {"self", "hypermodel", "objective", "max_trials", "seed", "hyperparameters", "tune_new_entries",
                   "allow_new_entries", "executions_per_trial", "directory", "project_name", "overwrite", "logger",
                   "tuner_id", "optimizer", "loss", "metrics", "distribution_strategy", "kwargs", "oracle",
                   "max_consecutive_failed_trials"}
# Tuner arguments a study sets elsewhere, and where.
_SET_IN_STUDY = {"max_trials": "search.max_trials", "seed": "search.seed", "executions_per_trial":
                 "search.executions_per_trial", "max_consecutive_failed_trials": "search.max_failed_trials",
                 "distribution_strategy": "train.distribution", "objective": "search.objective"}
MAX_VALIDATION_BUILDS = 32


# ---------------------------------------------------------------- the hypermodel
def declare(hp: kt.HyperParameters, tune: Tune):
    """Declare one searched value in keras-tuner's terms and return its value for this trial."""
    if tune.kind == "choice":
        return hp.Choice(tune.name, list(tune.values), default=tune.default)
    if tune.kind == "boolean":
        return hp.Boolean(tune.name, default=tune.default)
    number = hp.Int if tune.kind == "int" else hp.Float
    return number(tune.name, tune.min_value, tune.max_value, step=tune.step, sampling=tune.sampling,
                  default=tune.default)


class SpecHyperModel(kt.HyperModel):
    """Builds and trains the study's model for one set of hyperparameter values.

    `stats` are the training images' per-channel (mean, variance), for `preprocess.standardize`.
    """

    def __init__(self, study: StudySpec, input_shape: tuple, num_classes: int, stats: tuple | None = None):
        super().__init__(name=study.name)
        self.study, self.input_shape, self.num_classes, self.stats = study, tuple(input_shape), num_classes, stats

    def values(self, hp) -> dict:
        """This trial's builder, its options, and preprocess and train values: fixed as written, searched from `hp`."""
        def value(v):
            return declare(hp, v) if isinstance(v, Tune) else v
        model = self.study.model
        builder = value(model.builder)
        if isinstance(model.builder, Tune):
            # Every builder's options are declared, each in a conditional scope: keras-tuner then knows the
            # whole space (and samples each builder's options) but only the chosen builder's are active.
            for name in model.builders():
                with hp.conditional_scope(model.builder.name, [name]):
                    options = {k: value(v) for k, v in model.options_of(name).items()}
                if name == builder:
                    chosen = options
        else:
            chosen = {k: value(v) for k, v in model.options.items()}
        out = {"builder": builder, "model": chosen}
        for section in ("preprocess", "train"):
            fixed = getattr(self.study, section)
            out[section] = {f.name: value(getattr(fixed, f.name)) for f in dataclasses.fields(fixed)}
        return out

    def build(self, hp):
        values = self.values(hp)
        training.set_precision(values["train"]["precision"])     # before any layer exists: layers keep it
        body = models.build(values["builder"], self.input_shape, self.num_classes, **values["model"])
        model = preprocess.wrap(body, values["preprocess"], stats=self.stats, seed=self.study.data.seed,
                                raw_pixels=values["builder"] in models.RAW_PIXELS)
        return training.compile_model(model, values["train"])

    def fit(self, hp, model, x, y, *, callbacks=(), epochs=None, **kwargs):
        # Batch size and schedule are searched here: keras-tuner passes `hp` to fit as well as build.
        train = self.values(hp)["train"]
        epochs = epochs or train["epochs"]
        history = model.fit(x, y, batch_size=train["batch_size"], epochs=epochs, shuffle=True,
                            # The schedule first: it adds the epoch's rate to the logs the recorder writes.
                            callbacks=[*callbacks_module.schedule(train, epochs), *callbacks], **kwargs)
        # Fine-tune phase: the whole backbone trainable, at the lower rate, continuing the epoch count.
        if not train["fine_tune_epochs"] or not training.unfreeze_backbone(model):
            return history
        if not math.isfinite(history.history.get("loss", [0.0])[-1]):   # a diverged first phase stays failed
            return history
        training.compile_model(model, train, learning_rate=train["fine_tune_learning_rate"])
        for callback in callbacks:
            if isinstance(callback, callbacks_module.TrialRecorder):
                callback.continue_next_fit()
        start = len(history.epoch)      # after early stopping, fewer than `epochs`
        more = model.fit(x, y, batch_size=train["batch_size"], initial_epoch=start,
                         epochs=start + train["fine_tune_epochs"], shuffle=True, callbacks=list(callbacks), **kwargs)
        history.epoch.extend(more.epoch)
        for key, values in more.history.items():
            history.history.setdefault(key, []).extend(values)
        return history


# ---------------------------------------------------------------- tuners
def tuner_arguments(name: str) -> dict[str, inspect.Parameter]:
    """The arguments of a keras-tuner tuner (and its oracle) that a study may set in search.options."""
    base = TUNERS[name]
    params = dict(inspect.signature(kt.Tuner.__init__).parameters)
    params.update(inspect.signature(base.__init__).parameters)
    return {k: p for k, p in params.items() if k not in _SET_BY_HPSTUDY and p.kind is p.POSITIONAL_OR_KEYWORD}


# ---------------------------------------------------------------- checks that need Keras
def check(study: StudySpec) -> StudySpec:
    """Validate what spec.load cannot (names in registries, signatures); return the study with defaults filled."""
    try:
        data_module.source(study.data.dataset)
    except DataError as err:
        raise study.error("data.dataset", str(err)) from None
    try:
        data_module.core.check_image_size(study.data.dataset, study.data.image_size)
    except DataError as err:
        raise SpecError(f"{study.source}: {err}") from None
    study = dataclasses.replace(study, model=_check_model(study))
    _check_search(study)
    if (problem := devices.check(study.train.distribution)) is not None:
        raise study.error("train.distribution", problem)
    if study.callbacks.tensorboard and keras.backend.backend() != "tensorflow":
        raise study.error("callbacks.tensorboard", f"needs the TensorFlow backend; KERAS_BACKEND is {keras.backend.backend()}")
    return study


def _check_model(study: StudySpec) -> spec_module.ModelSpec:
    """The model section with each builder's options checked against its signature and defaults filled in."""
    model, searched = study.model, isinstance(study.model.builder, Tune)
    options = {}
    for name in model.builders():
        try:
            models.builder(name)
        except ModelError as err:
            raise study.error("model.builder.values" if searched else "model.builder", str(err)) from None
        path = f"model.{name}" if searched else "model"
        options[name] = spec_module.check_options(study, path, model.options_of(name), models.options(name))
        if name in models.RAW_PIXELS and study.preprocess.standardize is not False:
            raise study.error("preprocess.standardize", f"the {name} builder normalizes pixels as its backbone "
                                                        f"expects; remove standardize")
    return dataclasses.replace(model, options=options if searched else options[model.builder])


def _check_search(study: StudySpec) -> None:
    search = study.search
    allowed = tuner_arguments(search.tuner)
    for key, value in search.options.items():
        if key in _SET_IN_STUDY:
            raise study.error(f"search.options.{key}", f"set by hpstudy from {_SET_IN_STUDY[key]}; give it there")
        if key not in allowed:
            raise study.error(f"search.options.{key}", f"not an argument of the {search.tuner} tuner"
                                                       f"{close_match(key, allowed)}; allowed: {', '.join(allowed)}")
        default = allowed[key].default
        kinds = {bool: (bool,), int: (int,), float: (int, float)}.get(type(default), (int, float))
        if not isinstance(value, kinds) or isinstance(value, bool) != (bool in kinds):
            raise study.error(f"search.options.{key}", f"expected {'a number' if float in kinds else kinds[0].__name__}"
                                                       f" like the default {default!r}; got {shown(value)}")
    if search.tuner == "hyperband" and isinstance(study.train.epochs, Tune):
        raise study.error("train.epochs", "hyperband decides each trial's epochs itself; give a fixed number "
                                          "(it becomes search.options.max_epochs)")
    if search.tuner == "hyperband" and search.max_trials is not None:
        raise study.error("search.max_trials", "hyperband sets the number of trials itself from search.options "
                                               "max_epochs, factor and hyperband_iterations; remove max_trials")
    if search.tuner == "hyperband" and study.train.fine_tune_epochs:
        raise study.error("train.fine_tune_epochs", "hyperband sets each trial's epochs itself; a fine-tune phase "
                                                    "needs random, grid or bayesian search")
    if search.tuner == "grid" and not study.tunables():
        raise study.error("search.tuner", "a grid search needs at least one searched value (a mapping with tune:)")


def validation_builds(study: StudySpec) -> list[tuple[str, dict]]:
    """(builder, searched values) to build once before training: per builder, every combination when few,
    else each value once."""
    builds = []
    for name in study.model.builders():
        axes = {t.name: _sample_values(t) for t in study.model.options_of(name).values() if isinstance(t, Tune)}
        if math.prod(len(v) for v in axes.values()) <= MAX_VALIDATION_BUILDS:
            builds += [(name, dict(zip(axes, values))) for values in itertools.product(*axes.values())]
        else:
            builds += [(name, {})] + [(name, {key: v}) for key, values in axes.items() for v in values]
    return builds


def _sample_values(tune: Tune) -> list:
    if tune.kind == "choice":
        return list(tune.values)
    if tune.kind == "boolean":
        return [False, True]
    return [tune.min_value, tune.max_value]


def build_each(study: StudySpec, input_shape: tuple, num_classes: int, *, pretrained: bool = True) -> int:
    """Check the preprocessing, build the model for each of `validation_builds`; a failure is a SpecError.

    `pretrained=False` builds without pretrained weights (nothing to download). Returns the number of builds.
    """
    largest = {f.name: getattr(study.preprocess, f.name) for f in dataclasses.fields(study.preprocess)}
    try:
        preprocess.check({k: max(_sample_values(v)) if isinstance(v, Tune) else v for k, v in largest.items()},
                         input_shape)
    except ModelError as err:
        raise SpecError(f"{study.source}: {err}") from None
    builds = validation_builds(study)
    loaded, backbones = set(), False
    for name, combo in builds:
        options = {key: (v.default if v.default is not None else _sample_values(v)[0]) if isinstance(v, Tune) else v
                   for key, v in study.model.options_of(name).items()}
        options.update({key.rsplit(".", 1)[1]: v for key, v in combo.items()})
        if "weights" in options:
            # Pretrained weights are checked once per backbone; the architecture needs no download.
            key = (name, options.get("backbone"))
            if not pretrained or key in loaded:
                options["weights"] = None
            loaded.add(key)
        where = f" (with {', '.join(f'{k}={v}' for k, v in combo.items())})" if combo else ""
        try:
            backbones |= training.has_backbone(models.build(name, input_shape, num_classes, **options))
        except ModelError as err:
            # Builders name their options `model.<option>`; under a searched builder they sit in `model.<builder>.`.
            message = str(err)
            if isinstance(study.model.builder, Tune) and not message.startswith("model.builder"):
                message = message.replace("model.", f"model.{name}.", 1)
            raise SpecError(f"{study.source}: {message}{where}") from None
        except (ValueError, TypeError) as err:
            raise study.error("model", f"cannot build {name}{where}: {' '.join(str(err).split())[:300]}") from None
        finally:
            keras.backend.clear_session()
    if study.train.fine_tune_epochs and not backbones:
        raise study.error("train.fine_tune_epochs", f"a fine-tune phase unfreezes a pretrained backbone; no model of "
                                                    f"{', '.join(study.model.builders())} has one (builder transfer "
                                                    f"does)")
    return len(builds)


# ---------------------------------------------------------------- the search
def environment() -> dict:
    """Versions, backend and devices, for env.json."""
    import datetime
    import platform
    from importlib import metadata

    def version(package):
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
        "results_format": results.FORMAT,
        "backend": keras.backend.backend(),
        "devices": devices,
        **{name: version(name) for name in ("hpstudy", "keras", "keras-tuner", "tensorflow", "jax", "torch", "numpy")},
    }


def run(study: StudySpec, *, results_dir: str | Path = "results", overwrite: bool = False, verbose: bool = False,
        stream=None, memory_allowance_mib: float | None = None) -> results.Layout:
    """Run (or resume) the study's search; returns its results folder. `verbose` adds Keras's epoch lines.

    With `memory_allowance_mib`, the search stops between two trials with FreshProcessNeeded once the process
    has grown by more than that since its first trial (resuming in a new process continues it exactly).

    In a distributed study (`distributed.configure`) the chief serves the search and saves the best model;
    a worker runs the trials it is given.
    """
    study = check(study)
    dataset = load_data(study)
    worker = distributed.role() == "worker"
    if not worker:           # the chief checked every build already
        build_each(study, dataset.input_shape, dataset.num_classes)
    layout = results.prepare(Path(results_dir) / study.name, study, overwrite=overwrite and not worker)
    if worker:
        with distributed.Heartbeat(layout, distributed.worker_id()):
            _search(study, layout, dataset, stream, verbose, memory_allowance_mib)
        return layout
    if distributed.role() == distributed.CHIEF:
        distributed.chief_starting(layout)
    results.write_json(layout.env, environment())
    tuner = _search(study, layout, dataset, stream, verbose, memory_allowance_mib)
    retention.prune_checkpoints(tuner.oracle, layout, study.search.keep_checkpoints, search_over=True)
    _save_best(tuner, layout, dataset)
    table = results.write_table(layout)
    # Ranked once here, so that `hpstudy report` reads the ranking instead of importing scikit-learn.
    effects.importance(effects.completed(table), [t.name for t in study.tunables()], cache=layout.importance)
    failed = failed_trials(tuner.oracle)
    if len(failed) >= study.search.max_failed_trials:
        reason = table.message[table.status == "FAILED"].iloc[-1] if (table.status == "FAILED").any() else ""
        raise SearchError(f"{layout.root}: stopped after {len(failed)} failed trials (search.max_failed_trials: "
                          f"{study.search.max_failed_trials}); the last failed with: {reason}; every reason is in "
                          f"{layout.table}")
    return layout


def _search(study: StudySpec, layout: results.Layout, dataset, stream, verbose: bool, memory_allowance_mib):
    """Make the study's tuner and run its search (or its part of a distributed one); returns the tuner."""
    tuner = _make_tuner(study, layout, dataset, stream, memory_allowance_mib)
    tuners.show_tracebacks(verbose)
    try:
        tuner.search(dataset.train.x, dataset.train.y, validation_data=(dataset.val.x, dataset.val.y),
                     callbacks=callbacks_module.study_callbacks(study.callbacks, layout.tensorboard),
                     verbose=2 if verbose else 0)
    finally:
        tuner.progress.close()
    return tuner


def load_data(study: StudySpec) -> data_module.Dataset:
    """The study's dataset, split and capped as its data section says."""
    spec = study.data
    try:
        return data_module.load(spec.dataset, data_dir=spec.data_dir, validation_split=spec.validation_split,
                                test_split=spec.test_split, image_size=spec.image_size, seed=spec.seed,
                                subset=dataclasses.asdict(spec.subset) if spec.subset else None,
                                download=spec.download)
    except DataError as err:
        raise DataError(f"{study.source}: data: {err}") from None


def data_shape(study: StudySpec) -> tuple[tuple, int]:
    """(image shape, number of classes) of the study's data: from the registry, else by loading the data."""
    source = data_module.source(study.data.dataset)
    size = study.data.image_size
    shape = (size, size, 3) if size else source.input_shape
    if shape is None or source.num_classes is None:
        dataset = load_data(study)
        return dataset.input_shape, dataset.num_classes
    return shape, source.num_classes


def make_hypermodel(study: StudySpec, dataset: data_module.Dataset | None = None) -> SpecHyperModel:
    """The study's hypermodel, with the training images' pixel statistics when it may standardize.

    Without `dataset`, the data is loaded only if those statistics are needed.
    """
    standardize = study.preprocess.standardize
    needs_stats = isinstance(standardize, Tune) or standardize
    if dataset is None and needs_stats:
        dataset = load_data(study)
    shape, classes = (dataset.input_shape, dataset.num_classes) if dataset is not None else data_shape(study)
    stats = preprocess.pixel_stats(dataset.train.x) if needs_stats else None
    return SpecHyperModel(study, shape, classes, stats)


def _make_tuner(study: StudySpec, layout: results.Layout, dataset, stream, memory_allowance_mib=None):
    search = study.search
    kwargs = dict(search.options)
    if search.tuner == "hyperband":
        kwargs.setdefault("max_epochs", study.train.epochs)
        total = None
    else:
        kwargs["max_trials"] = search.max_trials or (None if search.tuner == "grid" else DEFAULT_MAX_TRIALS)
        total = kwargs["max_trials"]
    done = int(results.read_trials(layout).status.isin(["COMPLETED", "FAILED", "INVALID"]).sum())
    progress = Progress(total, search.objective, done=done, stream=stream)
    hypermodel = make_hypermodel(study, dataset)
    # keras-tuner prints "Reloading Tuner from ..." on resume; the progress line says it better.
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return tuner_class(TUNERS[search.tuner])(
                # keras-tuner reads seed 0 as "no seed" (`seed or random...`): shift so every study seed counts.
                hypermodel=hypermodel, objective=search.objective, seed=search.seed + 1,
                executions_per_trial=search.executions_per_trial, directory=str(layout.root),
                project_name=layout.tuner.name, overwrite=False, study=study, layout=layout, progress=progress,
                memory_allowance_mib=memory_allowance_mib,
                **devices.tuner_arguments(study.train.distribution), **kwargs)
    except (ValueError, TypeError) as err:     # keras-tuner's own checks of search.options values
        progress.close()
        raise study.error("search.options", f"the {search.tuner} tuner refused them: {' '.join(str(err).split())}") from None


def load_checkpoint(model: keras.Model, checkpoint) -> keras.Model:
    """`model` (freshly built) with a trial's best-epoch weights loaded."""
    with warnings.catch_warnings():
        # The checkpoint holds optimizer slots the freshly built model has not created yet.
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(checkpoint)
    return model


def _save_best(tuner, layout: results.Layout, dataset) -> None:
    """Evaluate the best trial's model once on the test split and save it (skipped if already done)."""
    best = [t for t in tuner.oracle.get_best_trials(1) if t.status == "COMPLETED"]
    if not best:
        return
    trial = best[0]
    saved = results.read_best(layout)
    number = results.trial_number(trial.trial_id)
    if saved.get("trial_id") == number and layout.best_model.exists():
        return
    # Built from the hyperparameters and loaded with the trial's own checkpoint, not tuner.load_model: under
    # Hyperband that first loads the checkpoint of the trial it continued from, which may have been pruned.
    keras.backend.clear_session()
    model = load_checkpoint(tuner.hypermodel.build(trial.hyperparameters), tuner._get_checkpoint_fname(trial.trial_id))
    test = model.evaluate(dataset.test.x, dataset.test.y, verbose=0, return_dict=True)
    # Create the optimizer's slots so the saved file matches what loading it builds (else Keras warns).
    model.optimizer.build(model.trainable_variables)
    tmp = layout.root / ".best.tmp.keras"
    model.save(tmp)
    os.replace(tmp, layout.best_model)
    results.write_json(layout.best, {
        "trial_id": number,
        "objective": tuner.oracle.objective.name,
        "score": trial.score,
        "best_epoch": trial.best_step,
        "hyperparameters": {k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")},
        "test_loss": float(test["loss"]),
        "test_accuracy": float(test["accuracy"]),
        "class_names": list(dataset.class_names),
    })
