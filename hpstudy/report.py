"""Tables of a study's trials, rendered as markdown, CSV or JSON (no Keras)."""
from __future__ import annotations

import pandas as pd

from hpstudy import results

FORMATS = ("markdown", "csv", "json")


def trials_table(paths) -> pd.DataFrame:
    """The trials of one or more results folders, best first (a `study` column when several)."""
    tables = []
    for path in paths:
        layout = results.open_folder(path)
        study = results.study_of(layout)
        table = results.read_trials(layout)
        ascending = not study.search.objective.endswith("accuracy")
        table = table.sort_values("score", ascending=ascending, na_position="last")
        if len(paths) > 1:
            table.insert(0, "study", study.name)
        tables.append(table)
    return pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0].reset_index(drop=True)


def render(table: pd.DataFrame, fmt: str) -> str:
    """The table as text in `fmt` (one of FORMATS)."""
    if fmt == "csv":
        return table.to_csv(index=False)
    if fmt == "json":
        return table.to_json(orient="records", indent=2) + "\n"
    shown = table.drop(columns=[c for c in table if table[c].isna().all()])
    return shown.to_markdown(index=False, floatfmt=".4g") + "\n"
