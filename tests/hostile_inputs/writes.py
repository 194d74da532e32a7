"""What hpstudy writes and deletes: a lock file that is not its own (a link, a dangling link, a folder, a named
pipe, a hard link), a report or model aimed at a results folder's records or through a link, and --overwrite of
a folder holding a user's file at any depth. Each is one line; nothing in the folder, nor outside it, changes."""
from __future__ import annotations

import os
from pathlib import Path

from tests.hostile_inputs import case
from tests.hostile_inputs.results import _keep, unchanged

OUTSIDE = "outside.txt"            # a user's file beside the case's results folder: never written
KEEP = "keep me\n"


def _outside(ctx) -> Path:
    path = ctx.tmp / OUTSIDE
    path.write_text(KEEP)
    return path


def nothing_changed(ctx) -> None:
    """The results folder is as it was, the user's outside file too, and no file was made outside."""
    unchanged(ctx)
    assert (ctx.tmp / OUTSIDE).read_text() == KEEP
    assert not (ctx.tmp / "made.txt").exists()


def _lock(kind: str):
    def make(ctx) -> Path:
        root = ctx.results()
        lock, outside = root / ".hpstudy.lock", _outside(ctx)
        lock.unlink(missing_ok=True)
        {"link": lambda: lock.symlink_to(outside), "dangling_link": lambda: lock.symlink_to(ctx.tmp / "made.txt"),
         "folder": lock.mkdir, "named_pipe": lambda: os.mkfifo(lock),
         "hard_link": lambda: os.link(outside, lock)}[kind]()
        _keep(ctx, root)
        return root
    return make


for _kind, _what in [("link", "is a symbolic link"), ("dangling_link", "is a symbolic link"), ("folder", "is a folder"),
                     ("named_pipe", "is not a plain file (a named pipe, socket or device)"),
                     ("hard_link", "is a hard link to another file")]:
    case(f"writes_lock_{_kind}_confirm", f".hpstudy.lock: {_what}, not hpstudy's lock file", check=nothing_changed)(
        lambda ctx, k=_kind: ["confirm", _lock(k)(ctx), "--top", "1", "--seeds", "2"])
    case(f"writes_lock_{_kind}_resume", f".hpstudy.lock: {_what}, not hpstudy's lock file", check=nothing_changed)(
        lambda ctx, k=_kind: (_lock(k)(ctx), ["run", ctx.study_file(), "--results-dir", ctx.tmp / "results"])[1])


def _aimed(ctx, relative: str) -> Path:
    root = ctx.results()
    _outside(ctx)
    _keep(ctx, root)
    return root


for _relative in ["best.json", "spec.yaml", "trials.csv", "env.json", ".hpstudy", "tuner/oracle.json",
                  "tuner/trial_0001/trial.json", "trials/1/history_0.csv", "trials/1/report.md"]:
    case(f"writes_report_onto_{_relative.replace('/', '_').replace('.', '_')}",
         f"is {_relative}, among the records of the results folder", check=nothing_changed)(
        lambda ctx, r=_relative: ["report", _aimed(ctx, r), "--format", "json", "--output", ctx.results() / r])

case("writes_report_onto_the_tuner_folder", "tuner: is a folder; give another path for the report",
     check=nothing_changed)(lambda ctx: ["report", _aimed(ctx, "tuner"), "--output", ctx.results() / "tuner"])

for _relative in ["best.keras", "trials/1/model.keras", "tuner/trial_0001/model.keras"]:
    case(f"writes_export_onto_{_relative.replace('/', '_').replace('.', '_')}",
         f"is {_relative}, among the records of the results folder", check=nothing_changed)(
        lambda ctx, r=_relative: ["export", _aimed(ctx, r), "--to", ctx.results() / r])


def _link_beside(ctx, name: str) -> Path:
    root = _aimed(ctx, name)
    (ctx.tmp / name).symlink_to(ctx.tmp / OUTSIDE)
    return root


case("writes_report_through_a_link", "report.md: is a symbolic link", check=nothing_changed)(
    lambda ctx: ["report", _link_beside(ctx, "report.md"), "--output", ctx.tmp / "report.md", "--best", "0"])
case("writes_export_through_a_link", "model.keras: is a symbolic link", check=nothing_changed)(
    lambda ctx: ["export", _link_beside(ctx, "model.keras"), "--to", ctx.tmp / "model.keras"])


def plant(root: Path, relative: str) -> Path:
    """A user's file (or, for a `relative` ending in /, folder) at `relative` inside results folder `root`."""
    path = root / relative.rstrip("/")
    if relative.endswith("/"):
        path.mkdir(parents=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("a user's notes\n")
    return path


def _foreign_inside(relative: str):
    def make(ctx):
        root = ctx.results()
        _outside(ctx)
        plant(root, relative)
        _keep(ctx, root)
        return ["run", ctx.study_file(), "--results-dir", ctx.tmp / "results", "--overwrite"]
    return make


for _relative in ["trials/my_notes.txt", "repeats/analysis.ipynb", "trials/1/notes.md", "tuner/trial_0000/mine/",
                  "tuner/notes.txt", "tensorboard/0000/execution0/mine.log", "workers/notes.txt"]:
    case(f"writes_overwrite_keeps_{_relative.rstrip('/').replace('/', '_').replace('.', '_')}",
         f"it holds '{_relative.rstrip('/')}', which hpstudy did not write", check=nothing_changed)(
        _foreign_inside(_relative))
