"""The checks of a study that need Keras: names in the registries, builders' and tuners' signatures, and one
build of each model, so that a bad study stops before its first epoch (`hpstudy validate` runs them alone)."""
from __future__ import annotations

import dataclasses
import gc
import inspect
import itertools
import math

import keras

from hpstudy import data as data_module, models
from hpstudy.engine.search import adapter
from hpstudy.engine.training import parallel
from hpstudy.engine.training.compile import has_backbone
from hpstudy.errors import DataError, ModelError, SpecError
from hpstudy.models import preprocess
from hpstudy.study import spec as spec_module
from hpstudy.study.schema import close_match, describe, short_repr
from hpstudy.study.spec import StudySpec, Tune
from hpstudy.text import exception_line

# Tuner arguments hpstudy sets itself from the study file; the rest of a signature may go in search.options.
_SET_BY_HPSTUDY = {"self", "hypermodel", "objective", "max_trials", "seed", "hyperparameters", "tune_new_entries",
                   "allow_new_entries", "executions_per_trial", "directory", "project_name", "overwrite", "logger",
                   "tuner_id", "optimizer", "loss", "metrics", "distribution_strategy", "kwargs", "oracle",
                   "max_consecutive_failed_trials", "question"}
# Tuner arguments a study sets elsewhere, and where.
_SET_IN_STUDY = {"max_trials": "search.max_trials", "seed": "search.seed", "executions_per_trial":
                 "search.executions_per_trial", "max_consecutive_failed_trials": "search.max_failed_trials",
                 "distribution_strategy": "train.distribution", "objective": "search.objective",
                 "question": "question"}
MAX_VALIDATION_BUILDS = 32


# ---------------------------------------------------------------- tuners
def settable_tuner_arguments(name: str) -> dict[str, inspect.Parameter]:
    """The arguments of a keras-tuner tuner (and its oracle) that a study may set in search.options."""
    params = adapter.arguments(name)
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
        data_module.core.check_label_mode(study.data.dataset, study.data.label_mode)
    except DataError as err:
        raise SpecError(f"{study.source}: {err}") from None
    study = dataclasses.replace(study, model=_check_model(study))
    _check_search(study)
    if (problem := parallel.check(study.train.distribution)) is not None:
        raise study.error("train.distribution", problem)
    if study.callbacks.tensorboard and keras.backend.backend() != "tensorflow":
        raise study.error("callbacks.tensorboard",
                          f"needs the TensorFlow backend; KERAS_BACKEND is {keras.backend.backend()}")
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
    return dataclasses.replace(model, options=options if isinstance(model.builder, Tune) else options[model.builder])


def _check_option(study: StudySpec, allowed: dict[str, inspect.Parameter], key: str, value) -> None:
    """One of search.options: an argument of the tuner that hpstudy leaves to the study, of its default's type."""
    if key in _SET_IN_STUDY:
        raise study.error(f"search.options.{key}", f"set by hpstudy from {_SET_IN_STUDY[key]}; give it there")
    if key not in allowed:
        raise study.error(f"search.options.{key}", f"not an argument of the {study.search.tuner} tuner"
                                                   f"{close_match(key, allowed)}; allowed: {', '.join(allowed)}")
    default = allowed[key].default
    kinds = {bool: (bool,), int: (int,), float: (int, float)}.get(type(default), (int, float))
    if not isinstance(value, kinds) or isinstance(value, bool) != (bool in kinds):
        expected = "a number" if float in kinds else "true or false" if bool in kinds else "an integer"
        if default is not None:
            default_text = str(default).lower() if isinstance(default, bool) else short_repr(default)
            expected += f" like the default {default_text}"
        raise study.error(f"search.options.{key}", f"expected {expected}; got {describe(value)}")


def _check_search(study: StudySpec) -> None:
    search = study.search
    allowed = settable_tuner_arguments(search.tuner)
    for key, value in search.options.items():
        _check_option(study, allowed, key, value)
    if search.tuner == "hyperband":
        _check_hyperband(study)
    if search.until is not None and search.tuner != "design":
        raise study.error("search.until", f"{search.until}: stops a design study between its balanced rounds; "
                                          "use it with tuner: design")
    if search.tuner == "design" and not study.question:
        raise study.error("search.tuner", "design balances the trials over the hyperparameters the study asks "
                                          "about; name them in question: (e.g. question: [model.head]), or use the "
                                          "random tuner")
    stopping = study.callbacks.early_stopping
    if search.checkpoint_epoch == "last" and stopping is not None and stopping.restore_best_weights:
        raise study.error("search.checkpoint_epoch", "last keeps the weights of the last epoch run, but "
                                                     "callbacks.early_stopping.restore_best_weights: true replaces "
                                                     "them by its best epoch's; set restore_best_weights: false")
    if not study.tunables() and (search.max_trials or 1) > 1:
        raise study.error("search.max_trials", f"{search.max_trials}: nothing is searched, so the study is one "
                                               "configuration, trained in one trial; repeat it over seeds with "
                                               "search.confirm, or remove max_trials")
    if search.pruning is not None:
        _check_pruning_can_stop(study)


def _check_pruning_can_stop(study: StudySpec) -> None:
    """A pruning rule that could never stop a trial is refused: with nothing to compare a trial with, no epoch
    to stop it at (never at its last), or fewer trials than the rule waits for."""
    pruning, max_trials = study.search.pruning, study.search.max_trials
    if pruning is None:
        return
    if not study.tunables():
        raise study.error("search.pruning", "nothing is searched here (one configuration, trained in one trial), "
                                            "so there is no other trial to compare it with; remove pruning")
    longest = _most_epochs(study.train)
    if pruning.warmup_epochs >= longest:
        epochs = f"{longest} epoch{'s' * (longest > 1)}"
        raise study.error("search.pruning.warmup_epochs", f"{pruning.warmup_epochs}: no trial runs more than {epochs} "
                                                          "and none is stopped at its last, so pruning would stop "
                                                          f"nothing; give fewer than {longest}")
    given = "" if max_trials is not None else " (its default)"
    max_trials = study.trial_limit()
    # median: min_trials completed trials besides the one it looks at; successive_halving: this one included.
    median = pruning.rule == "median"
    most = None if max_trials is None else max_trials - median
    if most is not None and pruning.min_trials > most:
        waits = "other trials have completed" if median else "trials, this one included, have reached a rung"
        fix = f"give at most {most}, or more trials" if most else "give more trials"
        raise study.error("search.pruning.min_trials", f"{pruning.min_trials}: the {pruning.rule} rule acts once "
                                                       f"{pruning.min_trials} {waits}, but search.max_trials is "
                                                       f"{max_trials}{given}, so it would stop nothing; {fix}")


def _most_epochs(train) -> int:
    """The most epochs a trial can run: the largest train.epochs, then fine_tune_epochs, any trial can have
    (searched values and train.overrides included)."""
    def largest(key: str) -> int:
        values = [getattr(train, key), *(o.set[key] for o in train.overrides if key in o.set)]
        return max(max(_sample_values(v)) if isinstance(v, Tune) else v for v in values)
    return largest("epochs") + largest("fine_tune_epochs")


def _check_hyperband(study: StudySpec) -> None:
    """What a Hyperband search decides itself (each trial's epochs, the number of trials) is not in the study."""
    if isinstance(study.train.epochs, Tune):
        raise study.error("train.epochs", "hyperband decides each trial's epochs itself; give a fixed number "
                                          "(it becomes search.options.max_epochs)")
    if study.search.max_trials is not None:
        raise study.error("search.max_trials", "hyperband sets the number of trials itself from search.options "
                                               "max_epochs, factor and hyperband_iterations; remove max_trials")
    if study.train.fine_tune_epochs:
        raise study.error("train.fine_tune_epochs", "hyperband sets each trial's epochs itself; a fine-tune phase "
                                                    "needs random, grid, bayesian or design search")
    for i, override in enumerate(study.train.overrides):
        for key in ("epochs", "fine_tune_epochs"):
            if override.set.get(key):
                raise study.error(f"train.overrides[{i}].set.{key}", "hyperband decides each trial's epochs "
                                                                     "itself; an override cannot set them")
    if not study.tunables():
        raise study.error("search.tuner", "hyperband compares configurations by training many of them briefly; "
                                          "nothing is searched here (one configuration): use grid, random or "
                                          "bayesian, which train it in one trial")


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
        return list(tune.values or ())
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
            backbones |= has_backbone(models.build(name, input_shape, num_classes, **options))
        except ModelError as err:
            # Builders name their options `model.<option>`; under a searched builder they sit in `model.<builder>.`.
            message = str(err)
            if isinstance(study.model.builder, Tune) and not message.startswith("model.builder"):
                message = message.replace("model.", f"model.{name}.", 1)
            raise SpecError(f"{study.source}: {message}{where}") from None
        except (ValueError, TypeError) as err:
            raise study.error("model", f"cannot build {name}{where}: {exception_line(err)}") from None
        finally:
            # Without Python's garbage collection each time (seconds in a large process): once, after the loop.
            keras.backend.clear_session(free_memory=False)
    gc.collect()
    fine_tune = study.train.fine_tune_epochs or any(o.set.get("fine_tune_epochs") for o in study.train.overrides)
    if fine_tune and not backbones:
        raise study.error("train.fine_tune_epochs", f"a fine-tune phase unfreezes a pretrained backbone; no model of "
                                                    f"{', '.join(study.model.builders())} has one (builder transfer "
                                                    f"does)")
    return len(builds)


