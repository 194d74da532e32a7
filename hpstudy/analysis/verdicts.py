"""What a report says in words: one line per hyperparameter with its verdict, the noise floor, and the
scientific hyperparameters each at its best nuisance setting. A difference is stated with its size and interval
with its word: effect, undetermined (with roughly how many more trials would settle it), negligible or too few
trials, so that nothing that is not a finding reads like one. No Keras."""
from __future__ import annotations

import numpy as np
import pandas as pd

from hpstudy.analysis import statistics
from hpstudy.analysis.adjusted import INACTIVE, Contrast, labelled


def show(value) -> str:
    """A hyperparameter value as a sentence shows it."""
    if isinstance(value, (float, np.floating)):
        return f"{float(value):g}"
    return str(value)


def number(value: float, ci95) -> str:
    """A difference with as many decimals as its interval needs (statistics.decimals), sign shown."""
    return f"{value:+.{statistics.decimals(ci95)}f}"


def _interval(ci) -> str:
    return f"95% interval {number(ci[0], ci)} to {number(ci[1], ci)}"


def contrast_text(contrast: Contrast, objective: str) -> str:
    """One contrast in words: `value vs reference` (or a range's), then its verdict word."""
    what = (f"{show(contrast.value)} vs {show(contrast.reference)}" if contrast.n_reference is not None
            else (contrast.value if contrast.value != INACTIVE else "inactive vs active"))
    count = f"n={contrast.n}" + (f" vs {contrast.n_reference}" if contrast.n_reference is not None else "")
    outcome = objective if contrast.outcome == "score" else f"share of runs that {contrast.outcome}"
    if contrast.verdict == statistics.TOO_FEW or contrast.difference is None:
        note = contrast.note if contrast.note.startswith("n=") else f"{contrast.note}; {count}"
        return f"{what}: too few trials ({note})"
    size = f"{number(contrast.difference, contrast.ci95)}, {_interval(contrast.ci95)}; {count}"
    size += f"; {contrast.note}" if contrast.note else ""       # a range's optimum inside it
    if contrast.verdict == statistics.EFFECT:
        return f"{what}: {outcome} {size.replace(', 95%', ' (95%', 1)})"
    if contrast.verdict == statistics.UNDETERMINED:
        more = f"; {more_text(contrast.more)} would settle it" if contrast.more else ""
        return f"{what}: undetermined ({size}{more})"
    return f"{what}: negligible ({size})"


# Beyond this many, "about N more trials" claims a precision the estimate does not have (it extrapolates the
# observed spread as 1/sqrt(n)): the count is only "far more than this study can run".
MORE_SHOWN = 200


def more_text(more: int) -> str:
    """Roughly how many more trials per value, in words: `about 12 more trials per value`, or `over 200 ...` when
    the estimate is beyond MORE_SHOWN."""
    return (f"about {more} more trial{'s' if more != 1 else ''} per value" if more <= MORE_SHOWN
            else f"over {MORE_SHOWN} more trials per value")


def line(name: str, contrasts: list[Contrast], objective: str, *, only: object = None) -> str:
    """The line of one hyperparameter: each of its contrasts with its verdict (`only`: its one value seen)."""
    if not contrasts:
        return (f"{name}: only {show(only)} among the runs that trained; nothing to compare" if only is not None
                else f"{name}: no run that trained")
    return f"{name} " + "; ".join(contrast_text(c, objective) for c in contrasts)


def verdict_of(contrasts: list[Contrast]) -> str:
    """A hyperparameter's verdict: the first word of statistics.VERDICTS any of its contrasts has (an effect if
    any is one; undetermined if any is; negligible only when every estimated contrast is), else too few trials."""
    verdicts = {c.verdict for c in contrasts}
    for candidate in statistics.VERDICTS:
        if candidate in verdicts:
            return candidate
    return statistics.TOO_FEW


def noise_note(floor: float | None, dof: int, configurations: int, objective: str,
               smallest_effect: float | None = None) -> str:
    """The noise floor in words, or how to measure it, and what `negligible` is measured against (the study's
    declared `smallest_effect`, else the floor)."""
    declared = (f" The study declares smallest_effect: {smallest_effect:g}; a difference whose whole interval lies "
                f"within +-{smallest_effect:g} is negligible." if smallest_effect is not None else "")
    if floor is None:
        return ("Noise floor not measured: no configuration has two seed repeats (search.confirm, or "
                "`hpstudy confirm`). Verdicts rest on the trials' scatter around the model alone"
                + ("." + declared if declared else
                   ", and nothing is called negligible without a floor or a declared smallest_effect."))
    low, high = statistics.std_interval(floor, dof)
    return (f"Noise floor: the seed-to-seed standard deviation of {objective} is {floor:.4g} (95% interval "
            f"{low:.3g} to {high:.3g}; pooled over {configurations} confirmed configurations, {dof} degrees of "
            "freedom, repeats that did not train left out)" +
            ("." + declared if declared else "; a difference whose whole interval lies within +- the floor is "
             "negligible."))


def isolation(done: pd.DataFrame, name: str, *, minimize: bool, summaries: pd.DataFrame | None,
              order_key=str) -> pd.DataFrame:
    """The scientific hyperparameter `name` compared at its best nuisance setting (the Tuning Playbook's
    isolation view): per value, the best trial with that value, its score, and where it was confirmed its
    seed repeats' mean, std and 95% interval."""
    labels = labelled(done[name])
    rows = []
    for value in sorted(pd.unique(labels), key=order_key):
        group = done[labels == value]
        best = group.loc[group["score"].idxmin() if minimize else group["score"].idxmax()]
        row = {name: show(value), "trials": len(group), "best trial": best["trial_id"], "best score": best["score"],
               "seed mean": None, "seed std": None, "seed 95% interval": None, "seeds": None}
        confirmed = summaries[summaries.trial_id == best["trial_id"]] if summaries is not None else None
        if confirmed is not None and len(confirmed):
            c = confirmed.iloc[0]
            row.update({"seed mean": c.score_mean, "seed std": c.score_std, "seeds": int(c.n),
                        "seed 95% interval": f"[{c.score_ci95[0]:.4f}, {c.score_ci95[1]:.4f}]" if c.score_ci95
                        else None})
        rows.append(row)
    return pd.DataFrame(rows)
