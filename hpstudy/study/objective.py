"""Which way an objective is better, defined once: a study declares it (`search.direction`), else it follows
from the metric's name (`default_direction`); and the running best of values in that direction. No Keras."""
from __future__ import annotations

import dataclasses
import math

DIRECTIONS = ("max", "min")


def default_direction(metric: str) -> str:
    """The direction of a metric that declares none: "max" for an accuracy (a name ending in `accuracy`), "min"
    for anything else (a loss, an error). The study file, `hpstudy analyze` and a report's column sort use it."""
    return "max" if str(metric).endswith("accuracy") else "min"


def with_direction(search):
    """A study's search section with its direction stated: the declared one, else its objective's default; so
    spec.yaml, the report and every reader say which way is better, and nothing guesses it again."""
    if search.direction is not None:
        return search
    return dataclasses.replace(search, direction=default_direction(search.objective))


def best_so_far(values, minimize: bool) -> list[float]:
    """The running best of `values` in their order, lowest where `minimize`, else highest. A value that is not
    finite (a diverged epoch) never counts; the running best is NaN until the first finite value."""
    out, best = [], math.nan
    for value in values:
        value = float(value)
        if math.isfinite(value) and (math.isnan(best) or (value < best if minimize else value > best)):
            best = value
        out.append(best)
    return out
