"""The second hostile corpus: what a user or a disk gives hpstudy that is not a study file.

Results folders (missing, truncated, wrong-typed and foreign files), datasets (npz files, image folders,
special files, bombs), images given to `predict`, command-line flags and the distributed flags. Each module
here registers its cases with `@case(...)`; `tests/test_hostile_inputs.py` runs every one through the command
line and checks its one-line error: the fragment, the exit code, no traceback, and (where a case says) that
nothing already computed was lost.

A case is a function of a `Context` that prepares the bad input and returns the command line's arguments.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

CASES: list["Case"] = []


@dataclass(frozen=True)
class Case:
    """One hostile input: `setup(ctx) -> argv`, the fragment its error line must hold, the exit code it must
    end with, and an optional `check(ctx)` run afterwards (what must still be there, what must not have run)."""
    name: str
    fragment: str
    setup: Callable
    exit_code: int = 2
    check: Callable | None = None


def case(name: str, fragment: str, *, exit_code: int = 2, check: Callable | None = None):
    """Register the decorated `setup(ctx) -> argv` as a case of the corpus."""
    def register(setup: Callable) -> Callable:
        assert name not in {c.name for c in CASES}, f"two hostile cases named {name}"
        CASES.append(Case(name, fragment, setup, exit_code, check))
        return setup
    return register


@dataclass
class Context:
    """What a case works in: its own temporary folder, and on demand a copy of a real finished study."""
    tmp: Path
    finished: Callable            # -> (results folder, study file) of the session's real finished study
    copies: dict = field(default_factory=dict)

    def results(self, name: str = "copy") -> Path:
        """A private copy of the finished study's results folder (cases may break it as they like)."""
        if name not in self.copies:
            source, _ = self.finished()
            target = self.tmp / "results" / source.name if name == "copy" else self.tmp / name / source.name
            shutil.copytree(source, target, symlinks=True)
            self.copies[name] = target
        return self.copies[name]

    def study_file(self) -> Path:
        """The finished study's study file, copied beside the case's results folder."""
        _, study = self.finished()
        target = self.tmp / study.name
        if not target.exists():
            shutil.copyfile(study, target)
        return target


def all_cases() -> list[Case]:
    """Every registered case (importing each module of this package registers its own)."""
    import importlib
    import pkgutil
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return list(CASES)
