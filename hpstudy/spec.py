"""Study files: strict YAML in, frozen dataclasses out.

Every check that needs no Keras lives here, so a bad study stops before any import of TensorFlow
and before any training. A searched value is written where the value would be, as a mapping with
`tune:` and keras-tuner's own argument names; its name is its dotted path (`model.dropout`).
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

import yaml

from hpstudy.errors import SpecError


# ---------------------------------------------------------------- constraints on values
@dataclass(frozen=True)
class Range:
    """Bounds for a numeric value; `*_open` excludes the bound itself."""

    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False

    def allows(self, value: float) -> bool:
        if self.min is not None and (value < self.min or (self.min_open and value == self.min)):
            return False
        return self.max is None or not (value > self.max or (self.max_open and value == self.max))

    def __str__(self) -> str:
        if self.max is None:
            return f"{'>' if self.min_open else '>='} {self.min:g}"
        lo = "(" if self.min_open else "["
        hi = ")" if self.max_open else "]"
        return f"in {lo}{self.min:g}, {self.max:g}{hi}"


Positive = Annotated[int, Range(1, 1_000_000)]
NonNegative = Annotated[int, Range(0, 1_000_000)]
Fraction = Annotated[float, Range(0.0, 1.0, max_open=True)]      # dropout, momentum
OpenFraction = Annotated[float, Range(0.0, 1.0, True, True)]      # validation split, decay factor
PositiveFloat = Annotated[float, Range(0.0, 1e6, min_open=True)]
NonNegativeFloat = Annotated[float, Range(0.0, 1e6)]
Seed = Annotated[int, Range(0, 2**32 - 2)]   # keras-tuner gets seed + 1 (it reads 0 as "no seed")
Metric = Literal["val_accuracy", "val_loss", "accuracy", "loss"]


# ---------------------------------------------------------------- searched values
TUNE_KINDS = ("choice", "int", "float", "boolean")
_TUNE_KEYS = {
    "choice": ("values", "default"),
    "int": ("min_value", "max_value", "step", "sampling", "default"),
    "float": ("min_value", "max_value", "step", "sampling", "default"),
    "boolean": ("default",),
}
SAMPLINGS = ("linear", "log", "reverse_log")


@dataclass(frozen=True)
class Tune:
    """A searched hyperparameter; `name` is its dotted path, keras-tuner's argument names otherwise."""

    name: str
    kind: str
    values: tuple | None = None
    min_value: float | None = None
    max_value: float | None = None
    step: float | None = None
    sampling: str = "linear"
    default: Any = None

    def to_yaml(self) -> dict:
        out = {"tune": self.kind}
        for key in _TUNE_KEYS[self.kind]:
            value = getattr(self, key)
            if key == "sampling" and value == "linear":
                continue
            if value is not None:
                out[key] = list(value) if isinstance(value, tuple) else value
        return out


# ---------------------------------------------------------------- the study sections
@dataclass(frozen=True)
class Subset:
    """Per-class caps on the number of images kept in each split (None keeps all)."""

    train: Optional[Positive] = None
    validation: Optional[Positive] = None
    test: Optional[Positive] = None


@dataclass(frozen=True)
class DataSpec:
    dataset: str = "digits"                 # a name in hpstudy.data.DATASETS
    data_dir: Optional[str] = None          # local copy of the dataset; else $HPSTUDY_DATA_DIR, then download
    validation_split: OpenFraction = 0.1    # split off train (stratified, seeded) unless the dataset has its own
    subset: Optional[Subset] = None
    seed: Seed = 0                          # seeds the splits and the subset
    download: bool = True                   # allow fetching a dataset that is not on disk


@dataclass(frozen=True)
class ModelSpec:
    builder: str = "plain_cnn"              # a name in hpstudy.models.BUILDERS
    options: dict = field(default_factory=dict)  # the builder's keyword arguments (values or Tune)


@dataclass(frozen=True)
class TrainSpec:
    epochs: Positive = 10
    batch_size: Positive = 64
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    learning_rate: PositiveFloat = 1e-3
    momentum: Fraction = 0.9                # sgd and rmsprop
    nesterov: bool = False                  # sgd
    weight_decay: NonNegativeFloat = 0.0    # decoupled weight decay, every optimizer
    lr_schedule: Literal["constant", "step", "cosine", "plateau"] = "constant"
    lr_decay_factor: OpenFraction = 0.1     # step and plateau: multiply the rate by this
    lr_decay_epochs: Positive = 10          # step: every this many epochs
    lr_patience: Positive = 3               # plateau: epochs without improvement of val_loss
    lr_min: NonNegativeFloat = 0.0          # cosine and plateau: the floor


@dataclass(frozen=True)
class SearchSpec:
    tuner: Literal["random", "grid", "hyperband", "bayesian"] = "random"
    objective: Metric = "val_accuracy"
    max_trials: Optional[Positive] = None   # None: the whole grid (grid), 10 (random, bayesian)
    executions_per_trial: Positive = 1
    seed: Seed = 0
    options: dict = field(default_factory=dict)  # the tuner's own arguments (checked against keras-tuner)


@dataclass(frozen=True)
class EarlyStopping:
    monitor: Metric = "val_loss"
    patience: NonNegative = 5
    min_delta: NonNegativeFloat = 0.0
    restore_best_weights: bool = True


@dataclass(frozen=True)
class CallbacksSpec:
    early_stopping: Optional[EarlyStopping] = None   # `{}` for the defaults, null for none
    terminate_on_nan: bool = True
    tensorboard: bool = False                          # TensorFlow backend: logs with HParams per trial


@dataclass(frozen=True)
class StudySpec:
    """A parsed, validated study. `source` is the file it came from (for error messages)."""

    name: str
    data: DataSpec = DataSpec()
    model: ModelSpec = ModelSpec()
    train: TrainSpec = TrainSpec()
    search: SearchSpec = SearchSpec()
    callbacks: CallbacksSpec = CallbacksSpec()
    source: str = field(default="<study>", compare=False)

    def tunables(self) -> list[Tune]:
        """Every searched value, model options first, in file order."""
        values = list(self.model.options.values()) + [getattr(self.train, f.name) for f in dataclasses.fields(TrainSpec)]
        return [v for v in values if isinstance(v, Tune)]

    def to_dict(self) -> dict:
        """The resolved study as plain YAML-able data (defaults filled in)."""
        out = _plain(self, skip=("source",))
        out["model"] = {"builder": self.model.builder, **out["model"]["options"]}
        return out

    def error(self, key: str, message: str) -> SpecError:
        """A SpecError for `key` of this study's file."""
        return _Failer(self.source)(key, message)


SECTIONS = {"data": DataSpec, "model": ModelSpec, "train": TrainSpec, "search": SearchSpec, "callbacks": CallbacksSpec}
TUNABLE_SECTIONS = ("model", "train")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


# ---------------------------------------------------------------- YAML without PyYAML's traps
class _StudyLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 scalars: `1e-4` is a float, `no`/`on` stay strings; no duplicate keys."""


_BOOL, _FLOAT, _INT = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:float", "tag:yaml.org,2002:int"
_StudyLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _FLOAT, _INT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StudyLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_StudyLoader.add_implicit_resolver(_FLOAT, re.compile(
    r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[0-9][0-9_]*[eE][-+]?[0-9]+|\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
    r"|\.(?:inf|Inf|INF))$|^\.(?:nan|NaN|NAN)$"), list("-+0123456789."))
# Decimal integers only: YAML 1.1 reads `010` as 8 and `1:30` as 90.
_StudyLoader.add_implicit_resolver(_INT, re.compile(r"^[-+]?[0-9][0-9_]*$"), list("-+0123456789"))
_StudyLoader.add_constructor(_INT, lambda loader, node: int(loader.construct_scalar(node).replace("_", ""), 10))


def _mapping_without_duplicates(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise yaml.constructor.ConstructorError(None, None, "keys must be plain names", key_node.start_mark)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_StudyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                             lambda loader, node: _mapping_without_duplicates(loader, node, deep=True))


# ---------------------------------------------------------------- entry points
def load(path: str | Path) -> StudySpec:
    """Read and validate a study file; raises SpecError naming the file, the key and what is allowed."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such study file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"{path}: cannot read the study file ({err.__class__.__name__}: {err})") from None
    return loads(text, source=str(path))


def loads(text: str, *, source: str = "<study>") -> StudySpec:
    """Validate a study given as YAML text; `source` names it in error messages."""
    try:
        raw = yaml.load(text, Loader=_StudyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise SpecError(f"{source}: {where}invalid YAML: {' '.join(str(problem).split())}") from None
    except RecursionError:
        raise SpecError(f"{source}: invalid YAML: nested too deeply") from None
    return from_dict(raw, source=source)


def from_dict(raw: Any, *, source: str = "<study>") -> StudySpec:
    """Validate a study given as a mapping (the parsed YAML)."""
    fail = _Failer(source)
    if not isinstance(raw, dict):
        raise fail("", f"a study file is a mapping with the keys name, {', '.join(SECTIONS)}; got {_kind(raw)}")
    _reject_unknown(fail, raw, ["name", *SECTIONS], "")
    name = raw.get("name")
    if name is None:
        raise fail("name", "required: the study's name, which also names its results folder")
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise fail("name", f"must be 1-100 letters, digits, '_', '-' or '.', starting with a letter or digit; got {name!r}")
    sections = {}
    for key, cls in SECTIONS.items():
        value = raw.get(key)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise fail(key, f"must be a mapping; got {_kind(value)}")
        if cls is ModelSpec:
            sections[key] = _parse_model(fail, value)
        else:
            sections[key] = _parse_dataclass(fail, value, cls, key, tunable=key in TUNABLE_SECTIONS)
    return StudySpec(name=name, **sections, source=source)


def check_options(spec: StudySpec, path: str, raw: dict, params: dict[str, tuple[Any, Any]]) -> dict:
    """Validate `raw` options against `params` (name -> (annotation, default)); return them with defaults.

    Used for a model builder's keyword arguments, read off its signature.
    """
    fail = _Failer(spec.source)
    _reject_unknown(fail, raw, list(params), path)
    return {name: (_check(fail, f"{path}.{name}", _plain(raw[name]), ann, tunable=True) if name in raw else default)
            for name, (ann, default) in params.items()}


def close_match(word: str, options) -> str:
    """' (did you mean X?)' for the closest of `options`, or ''."""
    # Case-insensitive, so "CIFAR10" still suggests "cifar10".
    lowered = {str(o).lower(): o for o in options}
    match = difflib.get_close_matches(str(word).lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean {lowered[match[0]]!r}?)" if match else ""


def changed_keys(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two resolved study dicts."""
    keys = []
    for key in sorted(set(old) | set(new), key=str):
        path = f"{prefix}{key}"
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict) and "tune" not in a and "tune" not in b:
            keys += changed_keys(a, b, path + ".")
        elif a != b:
            keys.append(path)
    return keys


# ---------------------------------------------------------------- validation machinery
class _Failer:
    def __init__(self, source: str):
        self.source = source

    def __call__(self, key: str, message: str) -> SpecError:
        return SpecError(f"{self.source}: {key + ': ' if key else ''}{message}")


def _kind(value) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {_short(value)!r}"
    if isinstance(value, (list, dict)) and not value:
        return f"an empty {'list' if isinstance(value, list) else 'mapping'}"
    return {dict: "a mapping", list: "a list"}.get(type(value), type(value).__name__)


def _short(value: str, limit: int = 40) -> str:
    return value if len(value) <= limit else value[: limit - 3] + "..."


def _reject_unknown(fail, raw: dict, allowed: list[str], path: str):
    for key in raw:
        if not isinstance(key, str) or key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            raise fail(where, f"unknown key{close_match(key, allowed)}; allowed: {', '.join(allowed)}")


def _parse_model(fail, raw: dict) -> ModelSpec:
    builder = raw.get("builder", ModelSpec.builder)
    if not isinstance(builder, str):
        raise fail("model.builder", f"must be the name of a model builder; got {_kind(builder)}")
    options = {}
    for key, value in raw.items():
        if key == "builder":
            continue
        if not isinstance(key, str):
            raise fail(f"model.{key}", "option names must be strings")
        options[key] = _check(fail, f"model.{key}", value, Any, tunable=True)
    return ModelSpec(builder=builder, options=options)


def _parse_dataclass(fail, raw: dict, cls, path: str, tunable: bool):
    hints = typing.get_type_hints(cls, include_extras=True)
    names = [f.name for f in dataclasses.fields(cls)]
    _reject_unknown(fail, raw, names, path)
    values = {name: _check(fail, f"{path}.{name}", raw[name], hints[name], tunable) for name in names if name in raw}
    return cls(**values)


def _unwrap(ann):
    """(base type, Range or None, allows None) of an annotation."""
    rng, optional = None, False
    if typing.get_origin(ann) in (Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        optional, ann = True, args[0]
    if typing.get_origin(ann) is Annotated:
        ann, *meta = typing.get_args(ann)
        rng = next((m for m in meta if isinstance(m, Range)), None)
    return ann, rng, optional


def _check(fail, key: str, value, ann, tunable: bool):
    """Validate one value (or a `tune:` mapping) against its annotation; return the clean value."""
    base, rng, optional = _unwrap(ann)
    if isinstance(value, dict) and "tune" in value:
        if not tunable:
            raise fail(key, f"cannot be searched: only values under {' and '.join(TUNABLE_SECTIONS)} can be")
        return _check_tune(fail, key, value, ann)
    if value is None:
        if optional:
            return None
        raise fail(key, f"must not be empty; expected {_expected(base, rng)}")
    if dataclasses.is_dataclass(base):
        if isinstance(value, bool) and optional:   # `early_stopping: true` means its defaults
            if not value:
                return None
            value = {}
        if not isinstance(value, dict):
            raise fail(key, f"must be a mapping; got {_kind(value)}")
        return _parse_dataclass(fail, value, base, key, tunable=False)
    return _check_scalar(fail, key, value, base, rng)


def _expected(base, rng) -> str:
    if typing.get_origin(base) is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(base)))
    name = {int: "an integer", float: "a number", bool: "true or false", str: "a string", dict: "a mapping"}.get(base, "a value")
    return f"{name} {rng}" if rng else name


def _check_scalar(fail, key: str, value, base, rng):
    if typing.get_origin(base) is Literal:
        options = typing.get_args(base)
        if value not in options or isinstance(value, bool) != isinstance(options[0], bool):
            raise fail(key, f"got {_kind(value)}{close_match(value, options)}; allowed: {', '.join(map(str, options))}")
        return value
    if base is Any:
        if isinstance(value, float) and not math.isfinite(value):
            raise fail(key, f"must be a finite number; got {value}")
        if isinstance(value, (list, dict)):
            if not all(isinstance(v, (str, int, float, bool)) for v in (value if isinstance(value, list) else value.values())):
                raise fail(key, "lists and mappings here may only hold plain values")
            return tuple(value) if isinstance(value, list) else value
        return value
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
        dict: isinstance(value, dict),
    }.get(base, True)
    if not ok:
        hint = ""
        if isinstance(value, str) and base in (int, float) and _looks_numeric(value):
            hint = " (write the number without quotes)"
        elif isinstance(value, str) and base is bool and value.lower() in ("yes", "no", "on", "off", "y", "n"):
            hint = " (only true and false are booleans in a study file)"
        raise fail(key, f"expected {_expected(base, rng)}; got {_kind(value)}{hint}")
    if base is float:
        value = float(value)
        if not math.isfinite(value):
            raise fail(key, f"expected a finite number; got {value}")
    if rng is not None and not rng.allows(value):
        raise fail(key, f"must be {rng}; got {value!r}")
    return value


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _check_tune(fail, key: str, raw: dict, ann) -> Tune:
    kind = raw["tune"]
    if kind not in TUNE_KINDS:
        raise fail(f"{key}.tune", f"got {_kind(kind)}{close_match(kind, TUNE_KINDS)}; allowed: {', '.join(TUNE_KINDS)}")
    _reject_unknown(fail, {k: v for k, v in raw.items() if k != "tune"}, list(_TUNE_KEYS[kind]), key)
    base, rng, _ = _unwrap(ann)
    if kind == "choice":
        return _check_choice(fail, key, raw, ann)
    if kind == "boolean":
        if base not in (bool, Any):
            raise fail(f"{key}.tune", f"boolean search needs a true/false value; this one is {_expected(base, rng)}")
        default = raw.get("default", False)
        if not isinstance(default, bool):
            raise fail(f"{key}.default", f"expected true or false; got {_kind(default)}")
        return Tune(key, "boolean", default=default)
    number = int if kind == "int" else float
    if base not in (number, Any) and not (kind == "int" and base is float):
        raise fail(f"{key}.tune", f"'{kind}' search does not fit: this value is {_expected(base, rng)}"
                                  f"{'; use tune: choice' if typing.get_origin(base) is Literal or base in (str, bool) else ''}")
    bounds = {}
    for bound in ("min_value", "max_value"):
        if bound not in raw:
            raise fail(key, f"'{kind}' search needs {bound}")
        bounds[bound] = _check_scalar(fail, f"{key}.{bound}", raw[bound], number, rng)
    lo, hi = bounds["min_value"], bounds["max_value"]
    if lo > hi:
        raise fail(key, f"min_value ({lo}) is greater than max_value ({hi})")
    sampling = raw.get("sampling", "linear")
    if sampling not in SAMPLINGS:
        raise fail(f"{key}.sampling", f"got {_kind(sampling)}{close_match(sampling, SAMPLINGS)}; allowed: {', '.join(SAMPLINGS)}")
    if sampling != "linear" and lo <= 0:
        raise fail(key, f"{sampling} sampling needs min_value > 0; got {lo}")
    step = raw.get("step")
    if step is not None:
        step = _check_scalar(fail, f"{key}.step", step, number, Range(0, min_open=True))
    default = raw.get("default")
    if default is not None:
        default = _check_scalar(fail, f"{key}.default", default, number, Range(lo, hi))
    return Tune(key, kind, min_value=lo, max_value=hi, step=step, sampling=sampling, default=default)


def _check_choice(fail, key: str, raw: dict, ann) -> Tune:
    values = raw.get("values")
    if not isinstance(values, list) or not values:
        raise fail(f"{key}.values", f"a choice needs a non-empty list of values; got {_kind(values)}")
    clean = [_check(fail, f"{key}.values[{i}]", v, ann, tunable=False) for i, v in enumerate(values)]
    if any(isinstance(v, (dict, list, tuple)) for v in clean):
        raise fail(f"{key}.values", "choice values must be plain numbers, strings or booleans")
    kinds = {bool if isinstance(v, bool) else float if isinstance(v, float) else type(v) for v in clean}
    if kinds == {int, float}:     # 0.5 and 1 may be mixed: keras-tuner wants one type
        clean, kinds = [float(v) for v in clean], {float}
    if len(kinds) > 1:
        raise fail(f"{key}.values", f"choice values must share one type; got {', '.join(sorted(k.__name__ for k in kinds))}")
    if len(set(clean)) != len(clean):
        raise fail(f"{key}.values", f"values repeat: {clean}")
    default = raw.get("default")
    if default is not None and default not in clean:
        raise fail(f"{key}.default", f"must be one of the values {clean}; got {_kind(default)}")
    return Tune(key, "choice", values=tuple(clean), default=default)


def _plain(obj, skip=()):
    if isinstance(obj, Tune):
        return obj.to_yaml()
    if dataclasses.is_dataclass(obj):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.name not in skip}
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return [_plain(v) for v in obj]
    return obj
