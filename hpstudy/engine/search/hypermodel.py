"""The hypermodel: the only code that sees keras-tuner's `hp`. It declares each searched value of a study in
keras-tuner's terms, builds the study's model for a trial's values, and trains it (batch size, schedule and
the fine-tune phase are searched in `fit`). Also the study's data, and a trial's model from its checkpoint.
"""
from __future__ import annotations

import dataclasses
import math
import os
import warnings

import keras
import keras_tuner as kt

from hpstudy import data as data_module, files, models
from hpstudy.engine import interrupt
from hpstudy.engine.search import pruning
from hpstudy.engine.training import callbacks as callbacks_module, parallel, schedules
from hpstudy.engine.training.compile import compile_model, set_precision, unfreeze_backbone
from hpstudy.errors import DataError, ResultsError
from hpstudy.models import preprocess
from hpstudy.results import space, trials
from hpstudy.results.folder import study_of
from hpstudy.results.layout import TUNER_TRIAL_FILE, Layout
from hpstudy.study.spec import StudySpec, Tune
from hpstudy.text import exception_line

# ---------------------------------------------------------------- seeds
_SEED_RANGE = 2**32                 # what numpy and Python's random accept
_REPEATS_FROM = 900_000             # repeat k of a study uses the seed a trial numbered 900000 + k would


def trial_seed(study: StudySpec, trial_id) -> int:
    """The seed of a trial's initial weights and data order: from search.seed and the trial's number, so the same
    study gives the same trials, and a trial run again after an interruption trains as it did."""
    return (study.search.seed * 1_000_003 + int(trial_id)) % _SEED_RANGE


def repeat_seed(study: StudySpec, k: int) -> int:
    """The seed of the k-th seed repeat of a confirmed configuration (the same k for every configuration), never
    one a trial of the study used."""
    return trial_seed(study, _REPEATS_FROM + k)


# ---------------------------------------------------------------- the hypermodel
def declare(hp: kt.HyperParameters, tune: Tune):
    """Declare one searched value in keras-tuner's terms and return its value for this trial."""
    if tune.kind == "choice":
        return hp.Choice(tune.name, list(tune.values or ()), default=tune.default)
    if tune.kind == "boolean":
        return hp.Boolean(tune.name, default=tune.default)
    number = hp.Int if tune.kind == "int" else hp.Float
    return number(tune.name, tune.min_value, tune.max_value, step=tune.step, sampling=tune.sampling,
                  default=tune.default)


class SpecHyperModel(kt.HyperModel):
    """Builds and trains the study's model for one set of hyperparameter values.

    `stats` are the training images' per-channel (mean, variance), for `preprocess.standardize`.
    `augment_seed` seeds the augmentation layers (the study's data.seed; a seed repeat sets its own).
    """

    def __init__(self, study: StudySpec, input_shape: tuple, num_classes: int, stats: tuple | None = None):
        super().__init__(name=study.name)
        self.study, self.input_shape, self.num_classes, self.stats = study, tuple(input_shape), num_classes, stats
        self.augment_seed = study.data.seed

    def values(self, hp) -> dict:
        """This trial's builder, its options, and preprocess and train values: fixed as written, searched from `hp`,
        then the train settings of the study's overrides that match the trial's searched values."""
        searched = {}       # the trial's active searched values, by dotted name

        def value(v, active=True):
            """A fixed value as written, a searched one declared in `hp`."""
            if not isinstance(v, Tune):
                return v
            found = declare(hp, v)
            if active:
                searched[v.name] = found
            return found
        model = self.study.model
        builder = value(model.builder)
        if isinstance(model.builder, Tune):
            # Every builder's options are declared, each in a conditional scope: keras-tuner then knows the
            # whole space (and samples each builder's options) but only the chosen builder's are active.
            for name in model.builders():
                with hp.conditional_scope(model.builder.name, [name]):
                    options = {k: value(v, name == builder) for k, v in model.options_of(name).items()}
                if name == builder:
                    chosen = options
        else:
            chosen = {k: value(v) for k, v in model.options.items()}
        out = {"builder": builder, "model": chosen}
        for section in ("preprocess", "train"):
            fixed = getattr(self.study, section)
            out[section] = {f.name: value(getattr(fixed, f.name)) for f in dataclasses.fields(fixed)
                            if f.name != "overrides"}
        out["train"].update(self.study.train.overridden(searched))
        return out

    def build(self, hp):
        """The trial's model: precision set, the builder's body behind the study's preprocessing, compiled."""
        values = self.values(hp)
        set_precision(values["train"]["precision"])     # before any layer exists: layers keep it
        parallel.before_build(self.study.train.distribution)
        body = models.build(values["builder"], self.input_shape, self.num_classes, **values["model"])
        model = preprocess.wrap(body, values["preprocess"], stats=self.stats, seed=self.augment_seed,
                                raw_pixels=values["builder"] in models.RAW_PIXELS)
        return compile_model(model, values["train"])

    def fit(self, hp, model, x, y, *, callbacks=(), epochs=None, **kwargs):
        # Batch size and schedule are searched here: keras-tuner passes `hp` to fit as well as build.
        """Train the trial's model: its batch size and schedule, then the fine-tune phase when it has one."""
        train = self.values(hp)["train"]
        epochs = epochs or train["epochs"]
        callbacks = [*callbacks, interrupt.StopOnInterrupt()]
        with interrupt.deferred():
            history = model.fit(x, y, batch_size=train["batch_size"], epochs=epochs, shuffle=True,
                                # The schedule first: it adds the epoch's rate to the logs the recorder writes.
                                callbacks=[*schedules.schedule(train, epochs), *callbacks], **kwargs)
        # Fine-tune phase: the whole backbone trainable, at the lower rate, continuing the epoch count.
        if not train["fine_tune_epochs"] or pruning.pruned(callbacks) or not unfreeze_backbone(model):
            return history
        if not math.isfinite(history.history.get("loss", [0.0])[-1]):   # a diverged first phase stays failed
            return history
        compile_model(model, train, learning_rate=train["fine_tune_learning_rate"])
        for callback in callbacks:
            if isinstance(callback, callbacks_module.TrialRecorder):
                callback.continue_next_fit()
        start = len(history.epoch)      # after early stopping, fewer than `epochs`
        with interrupt.deferred():
            more = model.fit(x, y, batch_size=train["batch_size"], initial_epoch=start,
                             epochs=start + train["fine_tune_epochs"], shuffle=True, callbacks=callbacks, **kwargs)
        history.epoch.extend(more.epoch)
        for key, values in more.history.items():
            history.history.setdefault(key, []).extend(values)
        return history



def load_data(study: StudySpec) -> data_module.Dataset:
    """The study's dataset, split and capped as its data section says."""
    spec = study.data
    try:
        return data_module.load(spec.dataset, data_dir=spec.data_dir, validation_split=spec.validation_split,
                                test_split=spec.test_split, image_size=spec.image_size, seed=spec.seed,
                                subset=dataclasses.asdict(spec.subset) if spec.subset else None,
                                download=spec.download, label_mode=spec.label_mode)
    except DataError as err:
        raise DataError(f"{study.source}: data: {err}") from None


def data_shape(study: StudySpec) -> tuple[tuple, int]:
    """(image shape, number of classes) of the study's data: from the registry, else by loading the data."""
    source = data_module.source(study.data.dataset)
    size = study.data.image_size
    shape = (size, size, 3) if size else source.input_shape
    classes = source.class_count(study.data.label_mode)
    if shape is None or classes is None:
        dataset = load_data(study)
        return dataset.input_shape, dataset.num_classes
    return shape, classes


def make_hypermodel(study: StudySpec, dataset: data_module.Dataset | None = None) -> SpecHyperModel:
    """The study's hypermodel, with the training images' pixel statistics when it may standardize.

    Without `dataset`, the data is loaded only if those statistics are needed.
    """
    standardize = study.preprocess.standardize
    needs_stats = isinstance(standardize, Tune) or standardize
    if dataset is None and needs_stats:
        dataset = load_data(study)
    shape, classes = (dataset.input_shape, dataset.num_classes) if dataset is not None else data_shape(study)
    stats = preprocess.pixel_stats(dataset.train.x) if needs_stats and dataset is not None else None
    return SpecHyperModel(study, shape, classes, stats)


def trial_hyperparameters(layout: Layout, trial_id) -> kt.HyperParameters:
    """A trial's hyperparameters, as keras-tuner recorded them in its trial.json."""
    folder = layout.tuner_trial(trial_id)
    path = folder / TUNER_TRIAL_FILE if folder else None
    record = trials.read_tuner_trial(path) if folder else None
    if path is None or record is None or not isinstance(record.get("hyperparameters"), dict):
        raise ResultsError(f"{path or layout.tuner}: trial {trial_id} has no {TUNER_TRIAL_FILE} "
                           "with its hyperparameters")
    # A received folder may record values the study never searched: refused before anything is built from them.
    space.check_values(path, record["hyperparameters"].get("values") or {}, study_of(layout))
    try:
        return kt.HyperParameters.from_config(record["hyperparameters"])
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise files.damaged(path, f"is corrupt (its hyperparameters: {exception_line(err, with_class=True)})") from None


def load_checkpoint(model: keras.Model, checkpoint) -> keras.Model:
    """`model` (freshly built) with a trial's kept weights loaded; a ResultsError naming the checkpoint when
    it is missing, corrupt (h5py cannot open it) or holds the weights of another model."""
    if not os.path.isfile(checkpoint):
        what = "is a folder, not a file" if os.path.isdir(checkpoint) else "is missing"
        raise files.damaged(checkpoint, f"{what} (the trial's kept weights)")
    with warnings.catch_warnings():
        # The checkpoint holds optimizer slots the freshly built model has not created yet.
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        try:
            model.load_weights(checkpoint)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError, RuntimeError) as err:
            raise files.damaged(checkpoint, f"is corrupt or not this trial's weights ({exception_line(err)})") from None
    return model


