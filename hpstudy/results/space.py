"""Recorded hyperparameter values checked against the study's search space before a model is rebuilt from them:
a received results folder may record a value the study never searched (`model.dropout: -1.0`, a string, a head
outside the study's choices), which Keras would fail on with a traceback, or train as a configuration the study
never had. No Keras."""
from __future__ import annotations

import math
from pathlib import Path

from hpstudy import files
from hpstudy.study.spec import StudySpec, Tune

# Rounding keras-tuner's float steps may leave at a bound (0.1 * 3 > 0.3).
_SLACK = 1e-9


def check_values(path: Path, values: dict, study: StudySpec) -> None:
    """A ResultsError naming `path` and the first of `values` (name -> recorded value) that lies outside the
    study's space: not one of a choice's values, not an integer or a finite number within a range's bounds, not
    true/false. Names the study does not search (keras-tuner's own `tuner/...` values) are not checked."""
    for tune in study.tunables():
        if tune.name in values and not _allowed(tune, values[tune.name]):
            raise files.damaged(path, f"records {tune.name} = {_brief(values[tune.name])}, outside the study's space "
                                      f"({_space(tune)}); no model is rebuilt from it")


def _allowed(tune: Tune, value) -> bool:
    if tune.kind == "boolean":
        return isinstance(value, bool)
    if tune.kind == "choice":
        return any(_same(value, choice) for choice in tune.values or ())
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    if tune.kind == "int" and not (isinstance(value, int) or float(value).is_integer()):
        return False
    low, high = tune.min_value, tune.max_value
    if low is None or high is None:
        return False
    slack = _SLACK * max(1.0, abs(low), abs(high))
    return low - slack <= value <= high + slack


def _same(value, choice) -> bool:
    """Equal and of the same kind ("0.5" is not 0.5), but for keras-tuner's record of a choice of true/false, which
    it keeps as 0 and 1."""
    if isinstance(value, bool) or isinstance(choice, bool):
        return isinstance(choice, bool) and type(value) in (bool, int) and value in (0, 1) and value == choice
    if isinstance(choice, (int, float)):
        return isinstance(value, (int, float)) and value == choice
    return type(value) is type(choice) and value == choice


def _space(tune: Tune) -> str:
    if tune.kind == "boolean":
        return "true or false"
    if tune.kind == "choice":
        return "one of " + ", ".join(_brief(v) for v in tune.values or ())
    return f"{'an integer' if tune.kind == 'int' else 'a number'} from {tune.min_value} to {tune.max_value}"


def _brief(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:40]}..."
