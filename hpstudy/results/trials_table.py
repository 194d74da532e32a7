"""The trials table of a run, kept in memory and written after each trial end: only the trials that changed are read
again, so a trial's end costs the same at any number of trials (rebuilding it from every file is quadratic over a
study). trials.csv is the same, byte for byte, as `trials.write_table` writes from the files. No Keras.
"""
from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from hpstudy import files
from hpstudy.results import trials
from hpstudy.results.folder import study_of
from hpstudy.results.layout import Layout
from hpstudy.results.status import ENDED
from hpstudy.text import csv_text


class TrialsTable:
    """A run's trials table (`trials.read_trials`'s), updated per trial end; trials.csv rewritten atomically.

    The trial files are read in full once (on the first update: a resumed run's trials), the study's spec.yaml
    parsed once; after that an update reads the trials it is told of, the trials not yet ended (a running trial's
    record changes at each epoch) and best.json. Only one process may write a study's table: a single process or
    a distributed study's chief, never its workers.
    """

    def __init__(self, layout: Layout):
        self.layout = layout
        self.study = study_of(layout)
        self._tuned = [t.name for t in self.study.tunables()]
        self._rows: dict[str, dict] | None = None        # keras-tuner's trial id ("0007") -> its row, when read

    def update(self, changed: Iterable[str] = (), *, known: Iterable[str] = ()) -> pd.DataFrame:
        """Read again the trials whose keras-tuner ids are in `changed` (the trials that ended), any of `known`
        (the oracle's trial ids) without a row yet, and every trial not ended; returns the table."""
        if self._rows is None:
            self._rows = self._read_all()
            return self.table()
        again = {*changed, *(tuner_id for tuner_id in known if tuner_id not in self._rows),
                 *(tuner_id for tuner_id, row in self._rows.items() if row["status"] not in ENDED)}
        for tuner_id in again:
            row = self._read(tuner_id)
            if row is None:
                self._rows.pop(tuner_id, None)
            else:
                self._rows[tuner_id] = row
        return self.table()

    def table(self) -> pd.DataFrame:
        """The table as it is in memory (rows in the order of keras-tuner's trial folders, as the files are
        listed), with the best trial's test metrics read from best.json now."""
        rows = [row for _, row in sorted((self._rows or {}).items())]
        return trials.table_of(rows, self.study, trials.read_best(self.layout))

    def write(self, changed: Iterable[str] = (), *, known: Iterable[str] = ()) -> pd.DataFrame:
        """`update`, then trials.csv rewritten (atomically) from the table; returns the table."""
        table = self.update(changed, known=known)
        files.write_text(self.layout.table, csv_text(table))
        return table

    def _read_all(self) -> dict[str, dict]:
        rows = {}
        for trial_file in self.layout.tuner_trials():       # the one listing of tuner/
            row = self._row(trial_file)
            if row is not None:
                rows[trial_file.parent.name[len("trial_"):]] = row
        return rows

    def _read(self, tuner_id: str) -> dict | None:
        return self._row(self.layout.record_of(tuner_id))

    def _row(self, trial_file) -> dict | None:
        trial = trials.tuner_record(self.layout, trial_file)
        return None if trial is None else trials.trial_row(self.layout, trial_file, trial, self._tuned,
                                                           self.study.train)
