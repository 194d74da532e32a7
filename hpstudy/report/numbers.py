"""Numbers as the report's tables show them to a reader (markdown, HTML, LaTeX): scores, losses and differences to
4 decimals, seconds to 0.1, counts (parameters, FLOPs, epochs, trials) with thousands separators, searched values
to 4 significant digits. CSV and JSON keep every digit; nothing here changes the tables themselves. No Keras."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

SECONDS = {"seconds"}
COUNTS = {"params", "trainable_params", "flops", "best_epoch", "epochs_run", "count", "n", "n reference", "seeds",
          "trials", "support"}
SMALL = {"importance", "std"}       # the importance ranking: squared errors, often below 0.001


def _is_blank(value) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def cell(column: str, value) -> str:
    """One value of column `column` as text for reading ("" for a blank)."""
    if _is_blank(value):
        return ""
    if isinstance(value, (bool, np.bool_)) or isinstance(value, str):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if not isinstance(value, (float, np.floating)):
        return str(value)
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    if column in SECONDS:
        return f"{value:.1f}"
    if column in COUNTS and value == round(value) and abs(value) < 2 ** 53:
        return f"{int(value):,}"
    if "." in column:                               # a searched value (dotted name): its own digits matter
        return f"{value:.4g}"
    if column in SMALL and value != 0 and abs(value) < 1e-3:
        return f"{value:.3g}"                       # a tiny importance: its digits, not 0.0000
    return f"{value:.4f}"


def rounded_text(table: pd.DataFrame) -> tuple[pd.DataFrame, list[bool]]:
    """(the table as text for reading, whether each column is numeric: right-aligned)."""
    numeric = [bool(pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(table[c]))
               for c in table.columns]
    text = pd.DataFrame({c: [cell(str(c), v) for v in table[c].tolist()] for c in table.columns},
                        index=table.index, columns=table.columns)
    return text, numeric
