"""Study files: strict YAML in, frozen dataclasses out, with every check that needs no Keras made before any
training. A searched value sits where the value would (`{tune: ...}`), named by its dotted path (`model.dropout`)."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Optional, Union

import yaml

from hpstudy.errors import SpecError
from hpstudy.study import objective as objective_module, overrides as overrides_module, schema, yamlfile
from hpstudy.study.schema import (
    FIXED,
    Failer,
    Metric,
    NonNegative,
    NonNegativeFloat,
    OpenFraction,
    Positive,
    PositiveFloat,
    Range,
    Seed,
    Tune,
    allowed,
    check_value,
    describe,
    plain,
)
from hpstudy.text import exception_line


# ---------------------------------------------------------------- the study sections
@dataclass(frozen=True)
class Subset:
    """Per-class caps on the number of images kept in each split (None keeps all)."""

    train: Optional[Positive] = None
    validation: Optional[Positive] = None
    test: Optional[Positive] = None


@dataclass(frozen=True)
class DataSpec:
    """The `data` section: which dataset, where it is, how it is split and capped."""
    dataset: str = "digits"                 # a name in hpstudy.data.DATASETS
    data_dir: Optional[str] = None          # local copy of the dataset; else $HPSTUDY_DATA_DIR, then download
    validation_split: OpenFraction = 0.1    # split off train (stratified, seeded) unless the dataset has its own
    test_split: OpenFraction = 0.2          # split off train first, unless the dataset has its own test split
    image_size: Optional[Annotated[int, Range(8, 1024)]] = None  # folder, cinic10: resize images to this square
    label_mode: Optional[Literal["fine", "coarse"]] = None   # cifar100: fine (100 classes, the default) or coarse (20)
    subset: Optional[Subset] = None
    seed: Seed = 0                          # seeds the splits, the subset and the augmentation
    download: bool = True                   # allow fetching a dataset that is not on disk


@dataclass(frozen=True)
class PreprocessSpec:
    """Input normalization and augmentation, run inside the model (augmentation only while training)."""

    standardize: bool = False               # per-channel mean/std of the training images; else pixels / 255
    flip: bool = False                      # random horizontal flip
    crop_padding: Annotated[int, Range(0, 64)] = 0        # pad by this many pixels, crop back at random (CIFAR: 4)
    translate: Annotated[float, Range(0.0, 0.5)] = 0.0    # random shift up to this fraction of height and width
    cutout: Annotated[int, Range(0, 1024)] = 0            # zero a random square of this side (after normalizing)


@dataclass(frozen=True)
class ModelSpec:
    """The builder and its options; a searched builder (a choice) has options per builder name."""

    builder: Union[str, Tune] = "plain_cnn"     # a name in hpstudy.models.BUILDERS, or a choice of names
    options: dict = field(default_factory=dict)  # keyword arguments (values or Tune); per builder when searched

    def builders(self) -> list[str]:
        """The builder names this study may build."""
        return list(self.builder.values or ()) if isinstance(self.builder, Tune) else [self.builder]

    def options_of(self, builder: str) -> dict:
        """The options given for ``builder``."""
        return self.options.get(builder, {}) if isinstance(self.builder, Tune) else self.options


@dataclass(frozen=True)
class TrainSpec:
    """The `train` section: epochs, batch size, optimizer, schedule and how a trial runs."""
    epochs: Positive = 10
    batch_size: Positive = 64
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    learning_rate: PositiveFloat = 1e-3
    momentum: schema.Fraction = 0.9                # sgd and rmsprop
    nesterov: bool = False                  # sgd
    weight_decay: NonNegativeFloat = 0.0    # decoupled weight decay, every optimizer
    lr_schedule: Literal["constant", "step", "cosine", "plateau"] = "constant"
    lr_decay_factor: OpenFraction = 0.1     # step and plateau: multiply the rate by this
    lr_decay_epochs: Positive = 10          # step: every this many epochs
    lr_patience: Positive = 3               # plateau: epochs without improvement of val_loss
    lr_min: NonNegativeFloat = 0.0          # cosine and plateau: the floor
    label_smoothing: Annotated[float, Range(0.0, 0.5)] = 0.0  # mix this much of a uniform target into the labels
    fine_tune_epochs: NonNegative = 0       # transfer: then this many epochs with the whole backbone trainable
    fine_tune_learning_rate: PositiveFloat = 1e-5  # the learning rate of that fine-tune phase
    # How each trial runs (one setting for the whole study):
    distribution: Optional[Annotated[Literal["mirrored"], FIXED]] = None  # mirrored: data-parallel over every GPU
    precision: Annotated[Literal["float32", "mixed_float16", "mixed_bfloat16"], FIXED] = "float32"
    jit_compile: Annotated[Union[bool, Literal["auto"]], FIXED] = "auto"    # XLA: auto lets Keras decide per backend
    steps_per_execution: Annotated[int, Range(1, 10_000), FIXED] = 1     # batches per compiled call
    # Train settings of their own for the trials whose searched values match (a tuple of overrides.Override).
    overrides: Annotated[tuple, FIXED] = ()

    def overridden(self, values: dict) -> dict:
        """The settings `overrides` give the trial whose searched values are `values` (dotted names)."""
        return overrides_module.applied(self.overrides, values)


@dataclass(frozen=True)
class ConfirmSpec:
    """`search.confirm`: after the search, train the best `top` configurations again with `seeds` new seeds each."""
    top: Positive = 3
    seeds: Annotated[int, Range(2, 100)] = 5       # at least 2: one seed measures no spread


@dataclass(frozen=True)
class PruningSpec:
    """`search.pruning`: stop a trial whose objective falls behind the other trials' at the same epoch (random, grid
    and bayesian search; hyperband prunes by itself). The README's "Pruning" says exactly when a trial stops."""
    rule: Literal["median", "successive_halving"] = "median"
    warmup_epochs: Positive = 1             # no trial is stopped before it has run this many epochs
    min_trials: Positive = 5                # median: completed trials needed; successive_halving: trials at the rung
    interval: Optional[Positive] = None     # median only (default 1): checked every this many epochs from warmup on
    reduction_factor: Optional[Annotated[int, Range(2, 100)]] = None   # successive_halving only (default 3)


@dataclass(frozen=True)
class SearchSpec:
    """The `search` section: the tuner, its objective and budget, failure and checkpoint limits."""
    DEFAULT_MAX_TRIALS: ClassVar[int] = 10  # random, bayesian and design search without max_trials
    tuner: Literal["random", "grid", "hyperband", "bayesian", "design"] = "random"   # design: see engine.search.design
    objective: Metric = "val_accuracy"
    direction: Optional[Literal["max", "min"]] = None   # which way is better; None: from the objective's name
    max_trials: Optional[Positive] = None   # None: see StudySpec.trial_limit
    executions_per_trial: Positive = 1
    seed: Seed = 0
    max_failed_trials: Positive = 5         # the study stops after this many failed trials (NaN loss, error, OOM)
    keep_checkpoints: Union[Positive, Literal["all"]] = 3   # keep the weights of the best k trials only
    # Which epoch's weights a trial keeps (its score stays the objective at its best epoch either way).
    checkpoint_epoch: Literal["best", "last"] = "best"
    options: dict = field(default_factory=dict)  # the tuner's own arguments (checked against keras-tuner)
    confirm: Optional[ConfirmSpec] = None   # seed repeats of the best configurations; `{}` for top 3, 5 seeds
    pruning: Optional[PruningSpec] = None   # stop hopeless trials early; `{}` for the median rule's defaults
    until: Optional[Literal["answered"]] = None   # design only: stop once every question's verdict is decisive

    @property
    def minimize(self) -> bool:
        """Whether a lower objective is better: the declared direction, else the objective's default."""
        return (self.direction or objective_module.default_direction(self.objective)) == "min"


@dataclass(frozen=True)
class EarlyStopping:
    """`callbacks.early_stopping`: Keras's EarlyStopping arguments."""
    monitor: Metric = "val_loss"
    patience: NonNegative = 5
    min_delta: NonNegativeFloat = 0.0
    restore_best_weights: bool = True


@dataclass(frozen=True)
class CallbacksSpec:
    """The `callbacks` section: early stopping, the NaN guard, TensorBoard."""
    early_stopping: Optional[EarlyStopping] = None   # `{}` for the defaults, null for none
    terminate_on_nan: bool = True
    tensorboard: bool = False                          # TensorFlow backend: logs with HParams per trial


@dataclass(frozen=True)
class StudySpec:
    """A parsed, validated study. `source` is the file it came from (for error messages)."""

    name: str
    question: tuple[str, ...] = ()      # the scientific hyperparameters (dotted names); the rest are nuisance
    smallest_effect: Optional[float] = None   # the difference that matters (bounds `negligible`); None: the floor
    data: DataSpec = DataSpec()
    model: ModelSpec = ModelSpec()
    preprocess: PreprocessSpec = PreprocessSpec()
    train: TrainSpec = TrainSpec()
    search: SearchSpec = SearchSpec()
    callbacks: CallbacksSpec = CallbacksSpec()
    source: str = field(default="<study>", compare=False)

    def tunables(self) -> list[Tune]:
        """Every searched value: the builder, model options, then preprocess and train values, in file order."""
        values = [self.model.builder]
        for builder in self.model.builders():
            values += self.model.options_of(builder).values()
        for section in (self.preprocess, self.train):
            values += [getattr(section, f.name) for f in dataclasses.fields(section)]
        return [v for v in values if isinstance(v, Tune)]

    def trial_limit(self) -> int | None:
        """The most trials the search runs: search.max_trials, else 1 when nothing is searched, None where the
        tuner decides (a grid: all of it; hyperband), else SearchSpec.DEFAULT_MAX_TRIALS."""
        if self.search.tuner == "hyperband":
            return None
        if not self.tunables():
            return self.search.max_trials or 1
        default = None if self.search.tuner == "grid" else SearchSpec.DEFAULT_MAX_TRIALS
        return self.search.max_trials or default

    def to_dict(self) -> dict:
        """The resolved study as plain YAML-able data (defaults filled in)."""
        out = plain(self, skip=("source",))
        out["model"] = {"builder": out["model"]["builder"], **out["model"]["options"]}
        return out

    def error(self, key: str, message: str) -> SpecError:
        """A SpecError for `key` of this study's file."""
        return Failer(self.source)(key, message)


SECTIONS = {"data": DataSpec, "model": ModelSpec, "preprocess": PreprocessSpec, "train": TrainSpec,
            "search": SearchSpec, "callbacks": CallbacksSpec}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


# ---------------------------------------------------------------- entry points
def load(path: str | Path) -> StudySpec:
    """Read and validate a study file; raises SpecError naming the file, the key and what is allowed."""
    path = Path(path)
    return loads(yamlfile.read(path), source=str(path))


def loads(text: str, *, source: str = "<study>") -> StudySpec:
    """Validate a study given as YAML text; `source` names it in error messages."""
    try:
        raw = yamlfile.parse(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise SpecError(f"{source}: {where}invalid YAML: {exception_line(problem)}") from None
    except RecursionError:
        raise SpecError(f"{source}: invalid YAML: nested too deeply") from None
    return from_dict(raw, source=source)


def from_dict(raw: Any, *, source: str = "<study>") -> StudySpec:
    """Validate a study given as a mapping (the parsed YAML)."""
    fail = Failer(source)
    if not isinstance(raw, dict):
        raise fail("", f"a study file is a mapping with the keys name, {', '.join(SECTIONS)}; got {describe(raw)}")
    schema.reject_unknown(fail, raw, ["name", "question", "smallest_effect", *SECTIONS], "")
    name = raw.get("name")
    if name is None:
        raise fail("name", "required: the study's name, which also names its results folder")
    # fullmatch: `$` would also match before a final line break ("study\n").
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise fail("name", f"must be 1-100 letters, digits, '_', '-' or '.', starting with a letter or digit; "
                           f"got {describe(name)}")
    sections: dict[str, Any] = {}                  # section name -> its spec (DataSpec, ModelSpec, ...)
    for key, cls in SECTIONS.items():
        value = raw.get(key)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise fail(key, f"must be a mapping; got {describe(value)}")
        if cls is ModelSpec:
            sections[key] = _parse_model(fail, value)
        elif cls is TrainSpec:    # its overrides are checked against the whole study, below
            sections[key] = schema.parse_dataclass(fail, {k: v for k, v in value.items() if k != "overrides"}, cls, key,
                                            tunable=True)
        else:
            sections[key] = schema.parse_dataclass(fail, value, cls, key, tunable=key in schema.TUNABLE_SECTIONS)
    if "\0" in (sections["data"].data_dir or ""):    # the OS refuses such a path with a ValueError, not an OSError
        raise fail("data.data_dir", "a path cannot hold the NUL character (\\0)")
    sections["search"] = objective_module.with_direction(_check_pruning_keys(fail, sections["search"]))
    study = StudySpec(name=name, **sections, source=source)
    train = dataclasses.replace(study.train, overrides=overrides_module.parse(
        fail, (raw.get("train") or {}).get("overrides"), study))
    return dataclasses.replace(study, train=train, question=_parse_question(fail, raw.get("question"), study),
                               smallest_effect=_parse_smallest_effect(fail, raw.get("smallest_effect")))


def check_options(spec: StudySpec, path: str, raw: dict, params: dict[str, tuple[Any, Any]]) -> dict:
    """Validate `raw` options against `params` (name -> (annotation, default)); return them with defaults.

    Used for a model builder's keyword arguments, read off its signature.
    """
    fail = Failer(spec.source)
    schema.reject_unknown(fail, raw, list(params), path)
    return {name: (check_value(fail, f"{path}.{name}", plain(raw[name]), ann, tunable=True) if name in raw else default)
            for name, (ann, default) in params.items()}


# ---------------------------------------------------------------- parsing the sections
# The key only that rule reads, and its default (the other rule's key stays null).
_PRUNING_KEYS = {"median": ("interval", 1), "successive_halving": ("reduction_factor", 3)}


def _check_pruning_keys(fail, search: SearchSpec) -> SearchSpec:
    """`search.pruning` checked against the tuner and the keys of its rule; its rule's own key filled in."""
    pruning = search.pruning
    if pruning is None:
        return search
    if search.tuner == "hyperband":
        raise fail("search.pruning", "hyperband prunes by itself (its brackets stop trials early); use pruning "
                                     "with the random, grid, bayesian or design tuner, or remove it")
    if search.executions_per_trial > 1:
        raise fail("search.pruning", "needs search.executions_per_trial: 1 (a trial's curve is then one fit, "
                                     "which the rule can compare epoch by epoch)")
    for rule, (key, _default) in _PRUNING_KEYS.items():
        if rule != pruning.rule and getattr(pruning, key) is not None:
            raise fail(f"search.pruning.{key}", f"is read by rule {rule} only; rule is {pruning.rule}")
    key, default = _PRUNING_KEYS[pruning.rule]
    given = getattr(pruning, key)
    filled: dict[str, Any] = {key: default if given is None else given}     # the field is named at run time
    return dataclasses.replace(search, pruning=dataclasses.replace(pruning, **filled))


def _parse_question(fail, raw, study: StudySpec) -> tuple[str, ...]:
    """`question`: a list of searched hyperparameters (dotted names), each once."""
    if raw is None or raw == []:
        return ()
    names = [t.name for t in study.tunables()]
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        raise fail("question", f"a list of the searched hyperparameters the study asks about, e.g. "
                               f"[{names[0] if names else 'model.dropout'}]; got {describe(raw)}")
    for item in raw:
        if not isinstance(item, str) or item not in names:
            raise fail("question", f"{describe(item)} is not a searched hyperparameter of this study"
                                   f"{schema.close_match(str(item), names)}; searched: {', '.join(names) or 'none'}")
    if len(set(raw)) != len(raw):
        raise fail("question", "names a hyperparameter twice")
    return tuple(raw)


def _parse_smallest_effect(fail, raw) -> float | None:
    """`smallest_effect`: a positive finite number (in the objective's units), or absent."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0 < raw < float("inf"):
        raise fail("smallest_effect", "the smallest difference in the objective that matters, a positive number "
                                      f"(e.g. 0.01 for one point of accuracy); got {describe(raw)}")
    return float(raw)


def _parse_model(fail, raw: dict) -> ModelSpec:
    builder = raw.get("builder", ModelSpec.builder)
    if isinstance(builder, dict) and "tune" in builder:
        return _parse_searched_model(fail, raw)
    if not isinstance(builder, str):
        raise fail("model.builder", f"must be the name of a model builder, or {{tune: choice, values: [...]}}; "
                                    f"got {describe(builder)}")
    return ModelSpec(builder=builder, options=_parse_options(fail, "model", {k: v for k, v in raw.items()
                                                                            if k != "builder"}))


def _parse_searched_model(fail, raw: dict) -> ModelSpec:
    """A builder searched as a choice: each builder's options sit under its name (`model.vgg.blocks`)."""
    builder = check_value(fail, "model.builder", raw["builder"], str, tunable=True)
    if builder.kind != "choice":
        raise fail("model.builder.tune", f"a searched builder is a choice among builder names; got {builder.kind!r}")
    options = {}
    for key, value in raw.items():
        if key == "builder":
            continue
        if key not in builder.values:
            raise fail(f"model.{key}", f"with a searched builder, options go under the name of the builder they "
                                       f"apply to, one of: {', '.join(builder.values)}")
        if value is not None and not isinstance(value, dict):
            raise fail(f"model.{key}", f"must be a mapping of {key}'s options; got {describe(value)}")
        options[key] = _parse_options(fail, f"model.{key}", value or {})
    return ModelSpec(builder=builder, options={name: options.get(name, {}) for name in builder.values})


def _parse_options(fail, path: str, raw: dict) -> dict:
    """A builder's options as written (checked against its signature later, by tuning.check)."""
    options = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            raise fail(f"{path}.{key}", "option names must be strings")
        options[key] = check_value(fail, f"{path}.{key}", value, Any, tunable=True)
    return options


def check_as_study_field(section: type, name: str, value, *, where: str):
    """`value` (a number, or the text of a command-line flag) checked as field `name` of `section` is in a study
    file, and never None; a SpecError saying what is allowed otherwise. `where` names the value's origin."""
    import typing
    ann = typing.get_type_hints(section, include_extras=True)[name]
    if typing.get_origin(ann) is Union:      # Optional[X]: a flag always gives a value
        ann = next(a for a in typing.get_args(ann) if a is not type(None))
    try:
        return check_value(Failer(where), "", int(value) if isinstance(value, str) else value, ann, tunable=False)
    except (ValueError, SpecError):
        raise SpecError(f"expected {allowed(ann)}, got {value!r}") from None
