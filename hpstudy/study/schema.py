"""Values in a study file: constraints, searched values (`Tune`) and the checks that apply them.

`check_value` validates one value against a type annotation (`Annotated[int, Range(...)]`,
`Literal[...]`, `Optional`, a dataclass) or turns a `{tune: ...}` mapping into a `Tune`; every
failure is a one-line SpecError naming the file and the dotted key.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import sys
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from hpstudy.errors import SpecError

TUNABLE_SECTIONS = ("model", "preprocess", "train")   # the study sections whose values may be searched


# ---------------------------------------------------------------- constraints on values
@dataclass(frozen=True)
class Range:
    """Bounds for a numeric value; `*_open` excludes the bound itself."""

    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False

    def allows(self, value: float) -> bool:
        """Whether `value` is inside the range."""
        if self.min is not None and (value < self.min or (self.min_open and value == self.min)):
            return False
        return self.max is None or not (value > self.max or (self.max_open and value == self.max))

    def __str__(self) -> str:
        if self.max is None:
            return f"{'>' if self.min_open else '>='} {_g(self.min)}"
        lo = "(" if self.min_open else "["
        hi = ")" if self.max_open else "]"
        return f"in {lo}{_g(self.min)}, {_g(self.max)}{hi}"


def _g(bound) -> str:
    try:
        short = f"{bound:g}"
    except OverflowError:   # a searched range's bound: an integer beyond 1.8e308
        return short_repr(bound)
    # 1e+06 is exact; 4.29497e+09 (a seed's bound, 4294967294) is not: an integer is then written out.
    return str(bound) if isinstance(bound, int) and float(short) != bound else short


Positive = Annotated[int, Range(1, 1_000_000)]
NonNegative = Annotated[int, Range(0, 1_000_000)]
Fraction = Annotated[float, Range(0.0, 1.0, max_open=True)]      # dropout, momentum
OpenFraction = Annotated[float, Range(0.0, 1.0, True, True)]      # validation split, decay factor
PositiveFloat = Annotated[float, Range(0.0, 1e6, min_open=True)]
NonNegativeFloat = Annotated[float, Range(0.0, 1e6)]
Seed = Annotated[int, Range(0, 2**32 - 2)]   # keras-tuner gets seed + 1 (it reads 0 as "no seed")
Metric = Literal["val_accuracy", "val_loss", "accuracy", "loss"]


class Fixed:
    """Marks a field of a searchable section that is one value for the whole study (`Annotated[..., FIXED]`)."""


FIXED = Fixed()


# ---------------------------------------------------------------- searched values
TUNE_KINDS = ("choice", "int", "float", "boolean")
_TUNE_KEYS = {"choice": ("values", "default"), "int": ("min_value", "max_value", "step", "sampling", "default"),
              "float": ("min_value", "max_value", "step", "sampling", "default"), "boolean": ("default",)}
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
        """The searched value as its study file mapping (`tune:` and keras-tuner's arguments)."""
        out: dict[str, object] = {"tune": self.kind}
        for key in _TUNE_KEYS[self.kind]:
            value = getattr(self, key)
            if key == "sampling" and value == "linear":
                continue
            if value is not None:
                out[key] = list(value) if isinstance(value, tuple) else value
        return out


def close_match(word: str, options) -> str:
    """' (did you mean X?)' for the closest of `options`, or ''."""
    # Case-insensitive, so "CIFAR10" still suggests "cifar10".
    lowered = {str(o).lower(): o for o in options}
    try:
        word = str(word)
    except ValueError:      # an int beyond sys.get_int_max_str_digits() is close to nothing
        return ""
    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean {lowered[match[0]]!r}?)" if match else ""


# ---------------------------------------------------------------- checks
class Failer:
    """Raises SpecErrors that name the study file and the dotted key."""
    def __init__(self, source: str):
        self.source = source

    def __call__(self, key: str, message: str) -> SpecError:
        # A key is shown as written, and a YAML key may hold a line break or a control character: escape
        # them, so the message stays one line.
        key = "".join(c if c.isprintable() else repr(c)[1:-1] for c in key)
        return SpecError(f"{self.source}: {key + ': ' if key else ''}{message}")


def describe(value) -> str:
    """A value in words, for error messages ("the number 3", "the text 'x'", ...)."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {short_repr(value)}"
    if isinstance(value, str):
        return f"the string {_short(value)!r}"
    if isinstance(value, (list, dict)) and not value:
        return f"an empty {'list' if isinstance(value, list) else 'mapping'}"
    return "a mapping" if type(value) is dict else "a list" if type(value) is list else type(value).__name__


def _short(value: str, limit: int = 40) -> str:
    return value if len(value) <= limit else value[: limit - 3] + "..."


def short_repr(value, limit: int = 60) -> str:
    """``repr(value)`` for a message, shortened: a number can have thousands of digits."""
    if isinstance(value, (list, tuple)):
        return _short("[" + ", ".join(short_repr(v, limit) for v in value) + "]", limit)
    try:
        return _short(repr(value), limit)
    except ValueError:      # an int beyond sys.get_int_max_str_digits() has no repr
        return f"about {'-' if value < 0 else ''}1e{int(abs(value).bit_length() * math.log10(2))}"


def reject_unknown(fail, raw: dict, allowed: list[str], path: str):
    """Raise a SpecError for the first key of `raw` the section does not allow, naming the closest allowed one."""
    for key in raw:
        if not isinstance(key, str) or key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            raise fail(where, f"unknown key{close_match(key, allowed)}; allowed: {', '.join(allowed)}")

def parse_dataclass(fail, raw: dict, cls, path: str, tunable: bool):
    """Check ``raw`` against the fields of dataclass ``cls`` (unknown keys refused); return an instance."""
    hints = typing.get_type_hints(cls, include_extras=True)
    names = [f.name for f in dataclasses.fields(cls)]
    reject_unknown(fail, raw, names, path)
    values = {name: check_value(fail, f"{path}.{name}", raw[name], hints[name], tunable and not is_fixed(hints[name]))
              for name in names if name in raw}
    return cls(**values)


def is_fixed(ann) -> bool:
    """Whether a field's annotation marks it FIXED: one setting for the whole study, never searched."""
    if typing.get_origin(ann) in (Union, types.UnionType):
        return any(is_fixed(a) for a in typing.get_args(ann))
    return typing.get_origin(ann) is Annotated and any(isinstance(m, Fixed) for m in typing.get_args(ann)[1:])


def _unwrap(ann):
    """(base type, Range or None, allows None) of an annotation."""
    rng, optional = None, False
    if typing.get_origin(ann) in (Union, types.UnionType):
        args = typing.get_args(ann)
        optional = type(None) in args
        rest = tuple(a for a in args if a is not type(None))
        ann = rest[0] if len(rest) == 1 else Union[rest]    # several: checked member by member
    if typing.get_origin(ann) is Annotated:
        ann, *meta = typing.get_args(ann)
        rng = next((m for m in meta if isinstance(m, Range)), None)
    return ann, rng, optional


def check_value(fail, key: str, value, ann, tunable: bool):
    """Validate one value (or a `tune:` mapping) against its annotation; return the clean value."""
    base, rng, optional = _unwrap(ann)
    if isinstance(value, dict) and "tune" in value:
        if not tunable and key.split(".")[0] in TUNABLE_SECTIONS:
            raise fail(key, "cannot be searched: it is one setting for the whole study")
        if not tunable:
            raise fail(key, f"cannot be searched: only values under {', '.join(TUNABLE_SECTIONS[:-1])} and "
                            f"{TUNABLE_SECTIONS[-1]} can be")
        return _check_tune(fail, key, value, ann)
    if value is None:
        if optional or base is Any:    # Any: checked against the builder's signature later
            return None
        raise fail(key, f"must not be empty; expected {_expected(base, rng)}")
    if typing.get_origin(base) is Union:
        for member in typing.get_args(base):
            try:
                return check_value(fail, key, value, member, tunable)
            except SpecError:
                continue
        raise fail(key, f"expected {_expected(base, rng)}; got {describe(value)}")
    if dataclasses.is_dataclass(base):
        if isinstance(value, bool) and optional:   # `early_stopping: true` means its defaults
            if not value:
                return None
            value = {}
        if not isinstance(value, dict):
            raise fail(key, f"must be a mapping; got {describe(value)}")
        return parse_dataclass(fail, value, base, key, tunable=False)
    return _check_scalar(fail, key, value, base, rng)


def allowed(ann) -> str:
    """What an annotation allows, in words ("an integer in [1, 32]", "one of max, avg", ...)."""
    base, rng, optional = _unwrap(ann)
    return _expected(base, rng) + (", or null" if optional else "")


def _expected(base, rng) -> str:
    if typing.get_origin(base) is Union:
        return " or ".join(_expected(*_unwrap(member)[:2]) for member in typing.get_args(base))
    if typing.get_origin(base) is Literal:
        words = typing.get_args(base)
        return ("one of " if len(words) > 1 else "") + ", ".join(map(str, words))
    name = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
            dict: "a mapping"}.get(base, "a value")
    return f"{name} {rng}" if rng else name


def _check_scalar(fail, key: str, value, base, rng):
    if typing.get_origin(base) is Literal:
        options = typing.get_args(base)
        if value not in options or isinstance(value, bool) != isinstance(options[0], bool):
            raise fail(key, f"got {describe(value)}{close_match(value, options)}; "
                            f"allowed: {', '.join(map(str, options))}")
        return value
    if base is Any:
        if not isinstance(value, (str, int, float, list, dict)):    # YAML's !!set, !!binary, !!omap ...
            raise fail(key, f"expected a number, a string, true or false, a list or a mapping; got {describe(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise fail(key, f"must be a finite number; got {value}")
        if isinstance(value, (list, dict)):
            members = value if isinstance(value, list) else value.values()
            if not all(isinstance(v, (str, int, float, bool)) for v in members):
                raise fail(key, "lists and mappings here may only hold plain values")
            if any(_beyond_floats(v) for v in members):
                raise fail(key, "a value is too large to be a number (beyond 1.8e308)")
            return tuple(value) if isinstance(value, list) else value
        if _beyond_floats(value):
            # No builder or tuner argument takes one, and past 4,300 digits it could not be written to spec.yaml.
            raise fail(key, f"too large to be a number (beyond 1.8e308); got {short_repr(value)}")
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
        raise fail(key, f"expected {_expected(base, rng)}; got {describe(value)}{hint}")
    if base is dict:    # search.options: keyword arguments, each a plain value (checked by name later)
        return {k: check_value(fail, f"{key}.{k}", v, Any, tunable=False) for k, v in value.items()}
    if base is float:
        if _beyond_floats(value):
            raise fail(key, f"{'must be ' + str(rng) if rng else 'too large to be a number (beyond 1.8e308)'}; "
                            f"got {short_repr(value)}")
        value = float(value)
        if not math.isfinite(value):
            raise fail(key, f"expected a finite number; got {value}")
    if rng is not None and not rng.allows(value):
        raise fail(key, f"must be {rng}; got {short_repr(value)}")
    return value


def _beyond_floats(value) -> bool:
    """Whether `value` is an integer no float can hold."""
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) > sys.float_info.max


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _check_tune(fail, key: str, raw: dict, ann) -> Tune:
    kind = raw["tune"]
    if kind not in TUNE_KINDS:
        raise fail(f"{key}.tune",
                   f"got {describe(kind)}{close_match(kind, TUNE_KINDS)}; allowed: {', '.join(TUNE_KINDS)}")
    reject_unknown(fail, {k: v for k, v in raw.items() if k != "tune"}, list(_TUNE_KEYS[kind]), key)
    base, rng, _ = _unwrap(ann)
    if kind == "choice":
        return _check_choice(fail, key, raw, ann)
    if kind == "boolean":
        if base not in (bool, Any):
            raise fail(f"{key}.tune", f"boolean search needs a true/false value; this one is {_expected(base, rng)}")
        default = raw.get("default", False)
        if not isinstance(default, bool):
            raise fail(f"{key}.default", f"expected true or false; got {describe(default)}")
        return Tune(key, "boolean", default=default)
    number = int if kind == "int" else float
    if base not in (number, Any) and not (kind == "int" and base is float):
        hint = "; use tune: choice" if typing.get_origin(base) is Literal or base in (str, bool) else ""
        raise fail(f"{key}.tune", f"'{kind}' search does not fit: this value is {_expected(base, rng)}{hint}")
    bounds = {}
    for bound in ("min_value", "max_value"):
        if bound not in raw:
            raise fail(key, f"'{kind}' search needs {bound}")
        bounds[bound] = _check_scalar(fail, f"{key}.{bound}", raw[bound], number, rng)
    lo, hi = bounds["min_value"], bounds["max_value"]
    if lo > hi:
        raise fail(key, f"min_value ({short_repr(lo)}) is greater than max_value ({short_repr(hi)})")
    sampling = raw.get("sampling", "linear")
    if sampling not in SAMPLINGS:
        raise fail(f"{key}.sampling",
                   f"got {describe(sampling)}{close_match(sampling, SAMPLINGS)}; allowed: {', '.join(SAMPLINGS)}")
    if sampling != "linear" and lo <= 0:
        raise fail(key, f"{sampling} sampling needs min_value > 0; got {short_repr(lo)}")
    step = raw.get("step")
    if step is not None:
        step = _check_scalar(fail, f"{key}.step", step, number, Range(0, min_open=True))
        # keras-tuner would quietly search min_value alone (isclose: 0.3 - 0.1 is 0.19999999999999998).
        if step > hi - lo and (kind == "int" or not math.isclose(step, hi - lo)):
            raise fail(f"{key}.step", f"{short_repr(step)} is larger than the range {short_repr(lo)} to "
                                      f"{short_repr(hi)}, which leaves min_value alone to search; use a smaller "
                                      "step or a fixed value")
    default = raw.get("default")
    if default is not None:
        default = _check_scalar(fail, f"{key}.default", default, number, Range(lo, hi))
    return Tune(key, kind, min_value=lo, max_value=hi, step=step, sampling=sampling, default=default)


def _check_choice(fail, key: str, raw: dict, ann) -> Tune:
    values = raw.get("values")
    if not isinstance(values, list) or not values:
        raise fail(f"{key}.values", f"a choice needs a non-empty list of values; got {describe(values)}")
    for i, v in enumerate(values):
        if isinstance(v, dict) and "tune" in v:
            raise fail(f"{key}.values[{i}]", "a choice's values are plain values; a searched value cannot hold another")
    clean = [check_value(fail, f"{key}.values[{i}]", v, ann, tunable=False) for i, v in enumerate(values)]
    if any(isinstance(v, (dict, list, tuple)) for v in clean):
        raise fail(f"{key}.values", "choice values must be plain numbers, strings or booleans")
    kinds = {bool if isinstance(v, bool) else float if isinstance(v, float) else type(v) for v in clean}
    if kinds == {int, float}:     # 0.5 and 1 may be mixed: keras-tuner wants one type
        try:
            clean, kinds = [float(v) for v in clean], {float}
        except OverflowError:   # an integer beyond 1.8e308
            raise fail(f"{key}.values", "a value is too large to be a number (beyond 1.8e308)") from None
    if len(kinds) > 1:
        raise fail(f"{key}.values",
                   f"choice values must share one type; got {', '.join(sorted(k.__name__ for k in kinds))}")
    if len(set(clean)) != len(clean):
        raise fail(f"{key}.values", f"values repeat: {short_repr(clean)}")
    default = raw.get("default")
    if default is not None:
        # `true` equals 1 in Python: the default must be one of the values in type as well.
        same = [v for v in clean if v == default and isinstance(v, bool) == isinstance(default, bool)]
        if not same:
            raise fail(f"{key}.default", f"must be one of the values {short_repr(clean)}; got {describe(default)}")
        default = same[0]
    return Tune(key, "choice", values=tuple(clean), default=default)


def plain(obj, skip=()):
    """A value as plain YAML data (dataclasses and tuples to mappings and lists)."""
    if isinstance(obj, Tune):
        return obj.to_yaml()
    if dataclasses.is_dataclass(obj):
        return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.name not in skip}
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return [plain(v) for v in obj]
    return obj

