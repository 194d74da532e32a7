"""`train.overrides`: train settings of their own for the trials whose searched values match.

An override is `{when: {<searched name>: <value>, ...}, set: {<train key>: <value>, ...}}`. A trial whose searched
values match every entry of `when` (dotted names, as the trials table names them: `model.builder`,
`model.deep_cnn.variant`) trains with `set`'s values in place of the train section's (`applied`).
"""
from __future__ import annotations

import typing
from dataclasses import dataclass

from hpstudy.study.schema import Tune, check_value, close_match, describe, is_fixed, reject_unknown, short_repr

SHAPE = "{when: {<searched value>: <value>, ...}, set: {<train key>: <value>, ...}}"


@dataclass(frozen=True)
class Override:
    """One entry of `train.overrides`: `set` replaces train settings in the trials that match `when`."""

    when: dict
    set: dict

    def matches(self, values: dict) -> bool:
        """Whether a trial whose searched values are `values` (dotted names; inactive ones absent) matches."""
        return all(name in values and same(values[name], value) for name, value in self.when.items())


def same(a, b) -> bool:
    """Equal, where a boolean equals only a boolean (Python has true == 1)."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def applied(overrides, values: dict) -> dict:
    """The train settings `overrides` give the trial whose searched values are `values`: those of every override
    that matches, in order (a later one wins a key two of them set)."""
    out = {}
    for override in overrides:
        if override.matches(values):
            out.update(override.set)
    return out


def keys(overrides) -> list[str]:
    """The train keys any of `overrides` sets, in the order they first appear."""
    return list(dict.fromkeys(key for override in overrides for key in override.set))


# ---------------------------------------------------------------- parsing
# Checked with the rest of the study file, without Keras: `when` names searched values and values they can take;
# `set` names train keys that are neither searched (an override of a searched value would be ambiguous) nor one
# setting for the whole study.
def parse(fail, raw, study) -> tuple[Override, ...]:
    """`train.overrides` as written in `study`'s file (a list, or null for none), checked against its searched
    values and its train section."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise fail("train.overrides", f"a list of {SHAPE}; got {describe(raw)}")
    searched = {t.name: t for t in study.tunables()}
    return tuple(_parse_one(fail, f"train.overrides[{i}]", item, searched, study.train) for i, item in enumerate(raw))


def _parse_one(fail, path: str, item, searched: dict[str, Tune], train) -> Override:
    if not isinstance(item, dict):
        raise fail(path, f"must be a mapping {SHAPE}; got {describe(item)}")
    reject_unknown(fail, item, ["when", "set"], path)
    for part, what in (("when", "the searched values a trial must have"), ("set", "the train settings it gets")):
        if not isinstance(item.get(part), dict) or not item[part]:
            raise fail(f"{path}.{part}", f"required: a non-empty mapping of {what}; got {describe(item.get(part))}")
    when = {name: _when_value(fail, f"{path}.when.{name}", name, value, searched)
            for name, value in item["when"].items()}
    hints = typing.get_type_hints(type(train), include_extras=True)
    settable = [key for key, ann in hints.items() if not is_fixed(ann) and not isinstance(getattr(train, key), Tune)]
    settings = {key: _set_value(fail, f"{path}.set.{key}", key, value, hints, settable, train)
                for key, value in item["set"].items()}
    return Override(when, settings)


def _when_value(fail, key: str, name, value, searched: dict[str, Tune]):
    """A `when` entry's value, as the searched value `name` takes it (1 of a float choice is 1.0)."""
    tune = searched.get(name) if isinstance(name, str) else None
    if tune is None:
        raise fail(key, f"not a searched value of this study{close_match(str(name), searched)}; an override "
                        f"matches trials by their searched values: {', '.join(searched) or 'none'}")
    found = _possible(tune, value)
    if found is None:
        raise fail(key, f"{describe(value)} is not a value {name} can take ({_possible_text(tune)})")
    return found


def _possible(tune: Tune, value):
    """`value` as one of the values `tune` can take, or None when it is not one."""
    if isinstance(value, (dict, list)) or value is None:
        return None
    if tune.kind == "choice":
        return next((v for v in tune.values or () if same(v, value)), None)
    if tune.kind == "boolean":
        return value if isinstance(value, bool) else None
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or tune.kind == "int" and isinstance(value, float)):
        return None
    low, high = tune.min_value, tune.max_value
    if low is None or high is None or not low <= value <= high:     # NaN is in no range
        return None
    if tune.kind == "int" and tune.step and tune.sampling == "linear" and (value - low) % tune.step:
        return None
    return value if tune.kind == "int" else float(value)


def _possible_text(tune: Tune) -> str:
    if tune.kind == "choice":
        return f"one of {short_repr(list(tune.values or ()))}"
    if tune.kind == "boolean":
        return "true or false"
    step = f" in steps of {short_repr(tune.step)}" if tune.step and tune.kind == "int" else ""
    kind = "an integer" if tune.kind == "int" else "a number"
    return f"{kind} from {short_repr(tune.min_value)} to {short_repr(tune.max_value)}{step}"


def _set_value(fail, key: str, name, value, hints: dict, settable: list[str], train):
    """A `set` entry's value, checked as the train key `name` is in the train section."""
    if name in hints and name not in settable:
        if isinstance(getattr(train, name), Tune):
            raise fail(key, f"train.{name} is searched in this study, so an override of it would be ambiguous; "
                            "fix it in train, or leave it out of set")
        if name == "overrides":
            raise fail(key, "overrides do not nest: list every override in train.overrides itself")
        raise fail(key, "one setting for the whole study (how every trial runs); an override cannot change it")
    if name not in hints:
        raise fail(key, f"unknown train key{close_match(str(name), settable)}; an override can set: "
                        f"{', '.join(settable)}")
    if isinstance(value, dict) and "tune" in value:
        raise fail(key, "an override sets plain values; to search this key, search it in train instead")
    return check_value(fail, key, value, hints[name], tunable=False)
