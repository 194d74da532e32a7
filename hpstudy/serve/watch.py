"""One results folder read live for `hpstudy serve`: its progress, running trials with their curves so far, the
trials table as the report shows it, and figures. Nothing here writes to the folder or takes its lock, and no file
that links out of it is read.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import stat
import threading
from pathlib import Path

import pandas as pd

from hpstudy import files
from hpstudy.errors import HpstudyError, ResultsError, one_line
from hpstudy.report import plots, tables
from hpstudy.results import folder
from hpstudy.results.curves import draw_curves
from hpstudy.results.layout import TUNER_TRIAL_FILE, Layout
from hpstudy.results.status import ENDED, SCORED, TrialStatus
from hpstudy.results.trials import read_history
from hpstudy.study.schema import Tune
from hpstudy.study.spec import StudySpec

CURVES = ("epoch", "loss", "val_loss", "accuracy", "val_accuracy")
_DRAWING = threading.Lock()                  # matplotlib draws one figure at a time


def open_study(path) -> Layout:
    """The layout of results folder `path` once it is proven one (a folder whose spec.yaml is a study file), or a
    ResultsError of one line."""
    root = Path(path)
    if not root.is_dir():
        raise ResultsError(f"{path}: not a folder; give a study's results folder, e.g. results/quickstart")
    layout = folder.open_folder(root)
    try:
        folder.study_of(layout)
    except HpstudyError as err:
        raise ResultsError(f"{path}: not an hpstudy results folder (its spec.yaml is not a study: {err})") from None
    return layout


# ---------------------------------------------------------------- what the study plans
def planned_trials(study) -> int | None:
    """The trials the search runs: search.max_trials, the grid's size (at most max_trials), or the default of
    random and bayesian search (1 when nothing is searched); None where the tuner decides (hyperband) or the grid
    cannot be counted."""
    limit = study.trial_limit()
    if study.search.tuner != "grid" or not study.tunables():
        return limit
    size = grid_size(study)
    return min(size, limit) if size and limit else size or limit


def grid_size(study) -> int | None:
    """The combinations a grid search tries: each builder's searched options multiplied, summed over the builders
    searched, times the other searched values; None when one cannot be counted."""
    model = study.model
    options = [[t for t in model.options_of(name).values() if isinstance(t, Tune)] for name in model.builders()]
    mine = {id(t) for group in options for t in group}
    rest = [t for t in study.tunables() if t is not model.builder and id(t) not in mine]
    counts = [_product(group) for group in options] + [_product(rest)]
    known = [count for count in counts if count is not None]
    if len(known) < len(counts):
        return None
    return sum(known[:-1]) * known[-1]


def _product(tunes) -> int | None:
    counts = [_count(t) for t in tunes]
    known = [count for count in counts if count is not None]
    return math.prod(known) if len(known) == len(counts) else None


def _count(tune: Tune) -> int | None:
    """How many values keras-tuner's grid takes of one searched value (10 of a float range without a step)."""
    if tune.kind == "choice":
        return len(tune.values or ())
    if tune.kind == "boolean":
        return 2
    step = tune.step if tune.step is not None else (1 if tune.kind == "int" else None)
    if step is None:
        return 10
    low, high = tune.min_value, tune.max_value
    if low is None or high is None:
        return None
    try:
        if tune.sampling == "linear":
            return int((high - low) // step + 1)
        return int(math.log(high / low, step) + 1e-8) + 1
    except (ArithmeticError, ValueError):
        return None


def planned_epochs(study, values: dict) -> int | None:
    """The epochs a trial with hyperparameter `values` runs at most (early stopping may end it sooner)."""
    if isinstance(values.get("tuner/epochs"), int):           # hyperband's own
        return values["tuner/epochs"]
    own = study.train.overridden(values)

    def value(key):
        given = getattr(study.train, key)
        return values.get(f"train.{key}") if isinstance(given, Tune) else own.get(key, given)
    epochs = value("epochs")
    fine_tune = value("fine_tune_epochs")
    return epochs + (fine_tune if isinstance(fine_tune, int) else 0) if isinstance(epochs, int) else None


# ---------------------------------------------------------------- the signature of the files read
# Every answer is cached under the signature (inode, size, modification and change times) of the files it was read
# from: an unchanged folder answers from memory after one walk over its trial folders. hpstudy writes each file to
# a temporary name and renames it into place, so a file that changed has a new inode, and a reader never sees half
# of one.
def signature(layout: Layout, root: str) -> tuple[tuple, dict]:
    """(the stamps of the files the trials table is read from, {trial number: the stamps of its histories}).
    `root` is the folder's real path: a link that leads out of it is a ResultsError."""
    table = [_stamp(str(path), root) for path in (layout.spec, layout.env, layout.best)]
    for entry in _entries(str(layout.tuner), root):
        if entry.name.startswith("trial_"):
            table.append(_stamp(os.path.join(entry.path, TUNER_TRIAL_FILE), root))
    histories: dict[str, list] = {}
    for trial in _entries(str(layout.trials), root):
        for entry in _entries(trial.path, root):
            if entry.name.startswith("."):        # a file being written, under its temporary name
                continue
            stamp = _stamp(entry.path, root)
            (histories.setdefault(trial.name, []) if entry.name.startswith("history_") else table).append(stamp)
    return tuple(table), {name: tuple(stamps) for name, stamps in histories.items()}


def _outside(path: str, root: str) -> None:
    target = os.path.realpath(path)
    if os.path.commonpath([target, root]) != root:
        raise ResultsError(f"{path}: a symbolic link out of the results folder (to {target}); hpstudy serve reads "
                           "nothing outside the folders it was given")


def _entries(path: str, root: str) -> list:
    """The entries of folder `path`, by name (none when it is missing or a file); links out of `root` refused."""
    if os.path.islink(path):
        _outside(path, root)
    try:
        with os.scandir(path) as found:
            entries = sorted(found, key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    for entry in entries:
        if entry.is_symlink():
            _outside(entry.path, root)
    return entries


def _stamp(path: str, root: str) -> tuple | None:
    """(path, inode, size, mtime, ctime) of a file; None when it does not exist."""
    try:
        found = os.lstat(path)
        if stat.S_ISLNK(found.st_mode):
            _outside(path, root)
            found = os.stat(path)
    except FileNotFoundError:
        return None
    return path, found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns


def digest(value) -> str:
    """A short hash of `value`'s repr: the version the page compares."""
    return hashlib.sha1(repr(value).encode()).hexdigest()[:12]


# ---------------------------------------------------------------- one study, cached
class Watched:
    """One results folder, read when asked and answered from memory while its files are unchanged (thread-safe)."""

    def __init__(self, path, index: int):
        self.path, self.index = str(path), index
        self.layout = open_study(path)
        self.root = os.path.realpath(self.layout.root)
        self.lock = threading.Lock()
        self.key: tuple | None = None                  # the signature the JSON text was built from
        self.text = ""
        self.table_key: tuple | None = None
        self.table: tuple[StudySpec, pd.DataFrame, str] | None = None   # (study, sorted trials table, its HTML)
        self.figures: list[tuple[str, bytes]] = []

    def state_json(self) -> str:
        """The study's state as JSON text: its name, objective, trials done of those planned, the running trials
        (values, epoch reached of at most how many, curve so far, when the last epoch ended), the best trial so
        far, the trials table as HTML, the figures' captions and addresses, and a version that changes with any
        of it; or its one-line error (a damaged file, a link out of the folder)."""
        with self.lock:
            try:
                table_key, histories = signature(self.layout, self.root)
                key = (table_key, tuple(sorted(histories.items())))
                if key != self.key:
                    self.text = json.dumps(self._state(table_key, histories, key), allow_nan=False)
                    self.key = key
            except (HpstudyError, OSError, ValueError) as err:    # a damaged file, a link out: said, read again
                message = one_line(str(err))
                self.key, self.figures = None, []
                self.text = json.dumps({"index": self.index, "path": self.path, "name": Path(self.path).name,
                                        "error": message, "version": digest(message)})
            return self.text

    def figure(self, number: int) -> bytes | None:
        """The PNG of figure `number` of the latest state, or None."""
        with self.lock:
            return self.figures[number][1] if 0 <= number < len(self.figures) else None

    def _state(self, table_key, histories: dict, key) -> dict:
        if table_key != self.table_key or self.table is None:
            self.table, self.table_key = _read_table(self.path), table_key
        study, table, html = self.table
        self.figures = _figures(self.path)
        version = digest(key)
        running = table[table.status == TrialStatus.RUNNING].trial_id
        # The report's order: completed trials first, then pruned ones (the best only when nothing completed).
        top = table.iloc[0] if len(table) and table.status.iloc[0] in SCORED else None
        state = {"index": self.index, "path": self.path, "name": study.name, "objective": study.search.objective,
                 "better": "lower" if study.search.minimize else "higher",
                 "tuner": study.search.tuner, "trials": len(table), "done": int(table.status.isin(ENDED).sum()),
                 "planned": planned_trials(study),
                 "counts": {str(k): int(v) for k, v in table.status.value_counts(dropna=False).items()},
                 "running": [self._running(study, number, histories.get(number, ())) for number in running],
                 "best": None if top is None else {"trial_id": top.trial_id, "score": _finite([top.score])[0]},
                 "table": html, "error": None,
                 "figures": [{"caption": caption, "url": f"figure/{self.index}/{n}.png?v={version}"}
                             for n, (caption, _) in enumerate(self.figures)]}
        state["version"] = digest(state)
        return state

    def _running(self, study, number: str, stamps: tuple) -> dict:
        """A running trial: its values, the epoch its newest history reached, its curve so far."""
        stems = [Path(s[0]).stem[len("history_"):] for s in stamps if s]
        execution = max((int(stem) for stem in stems if stem.isdigit()), default=0)
        try:
            history = read_history(self.layout, number, execution)
        except ResultsError:
            history = None
        tuner_folder = self.layout.tuner_trial(number)
        record = files.read_json(tuner_folder / TUNER_TRIAL_FILE) if tuner_folder else None   # lenient
        values = ((record or {}).get("hyperparameters") or {}).get("values") or {}
        curve = {} if history is None else {c: _finite(history[c]) for c in CURVES if c in history}
        curve["epoch"] = [int(e) for e in history["epoch"]] if history is not None else []
        return {"trial_id": number, "execution": execution, "epoch": max(curve["epoch"], default=0),
                "epochs": planned_epochs(study, values),
                "values": {k: v for k, v in values.items() if not k.startswith("tuner/")},
                "updated": max((s[3] for s in stamps if s), default=0) / 1e9, "curve": curve}


def _read_table(path: str) -> tuple[StudySpec, pd.DataFrame, str]:
    """(study, trials table sorted as the report sorts it, the table as HTML with the report's columns)."""
    _, study, table = tables.read_study(path)
    table = tables.sort_trials(table, minimize=study.search.minimize)
    visible = tables.columns_worth_showing(table)
    for column in visible:        # the blanks of whole-number columns (a running trial's) blank, not <NA>
        if pd.api.types.is_extension_array_dtype(visible[column]):
            visible[column] = visible[column].astype(object).where(visible[column].notna(), "")
    html = (visible.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}", border=0, escape=True)
            if len(visible) else "<p>(no trial yet)</p>")
    return study, table, html


def _finite(values) -> list:
    """Numbers for JSON: NaN and infinities (a diverged trial) as null."""
    out = []
    for value in values:
        number = float(value) if value is not None else math.nan
        out.append(number if math.isfinite(number) else None)
    return out


# ---------------------------------------------------------------- figures
_REPORT_FIGURES: dict[str, tuple[tuple, list]] = {}     # results folder -> (ended trials, the report's figures)


def _report_figures(path, table: pd.DataFrame) -> list[tuple[str, bytes]]:
    """The report's figures of the study (`plots.figures`), drawn again only when the ended trials or the seed
    repeats change, not at every epoch of a running trial."""
    ended = table[table.status != TrialStatus.RUNNING]
    repeats = Layout(Path(path)).repeats_table
    key = (tuple(map(str, zip(ended.trial_id, ended.status, ended.score))),
           repeats.stat().st_mtime_ns if repeats.exists() else None)
    cached = _REPORT_FIGURES.get(str(path))
    if cached is None or cached[0] != key:
        cached = key, plots.figures(tables.build([path]).studies[0])
        _REPORT_FIGURES[str(path)] = cached
    return cached[1]


def _figures(path) -> list[tuple[str, bytes]]:
    """The figures the page shows of the study in results folder `path`, as (caption, PNG bytes): the learning
    curves of its running trials, drawn at each epoch, then the report's figures."""
    layout, study, table = tables.read_study(path)
    out = []
    for number in table.trial_id[table.status == TrialStatus.RUNNING]:
        caption = f"trial {number}, running"
        executions = [int(p.stem[8:]) for p in layout.entries(layout.trial(number), "history_*.csv")
                      if p.stem[8:].isdigit()]
        if not executions:
            continue
        newest = layout.history(number, max(executions))
        try:
            facts = os.stat(newest)
        except OSError:
            continue
        png = _curves(str(layout.root), number, max(executions), caption, (facts.st_ino, facts.st_size,
                                                                          facts.st_mtime_ns))
        if png:
            out.append((f"learning curves: {caption}", png))
    return out + _report_figures(path, table)


@functools.lru_cache(maxsize=32)
def _curves(root: str, number: str, execution: int, caption: str, stamp: tuple) -> bytes | None:
    """One execution's learning curves as a PNG, drawn once per version (`stamp`) of its history file."""
    try:
        history = read_history(Layout(Path(root)), number, execution)
    except ResultsError:
        return None
    return _curves_png(number, history, caption) if history is not None and len(history) else None


def _curves_png(number: str, history, title: str) -> bytes:
    """A running trial's loss and accuracy per epoch, training and validation, as a PNG (`results.curves`)."""
    with _DRAWING:
        return plots.png(draw_curves([(f"trial {number}", history, None)], title, size=(8, 3.2)))
