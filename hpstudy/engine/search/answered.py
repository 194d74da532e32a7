"""`search.until: answered`: a design study (`tuner: design`) stops once its question is answered.

After each balanced round the question's verdicts are computed from the trials so far, as the report computes
them; while any is not decisive (`DECISIVE`) at that look's level (analysis.looks), another round runs. The
oracle asks `Answered.check` before it starts a round; the search's last line says why it stopped.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from hpstudy.analysis import effects as effects_module, looks as looks_module, repeats as repeats_module
from hpstudy.results import trials as trials_module
from hpstudy.results.layout import Layout
from hpstudy.results.status import TrialStatus
from hpstudy.study.spec import StudySpec

DECISIVE = ("effect", "negligible")       # the verdicts that answer a question; the others ask for more trials
REPEAT_SEEDS = 2                          # seed repeats per configuration the question rests on
FLOOR_DOF = 4                             # a floor from fewer degrees of freedom is measured further


@dataclass
class Answered:
    """The stopping rule of one study: `check()` is the verdicts' reason to stop, or None to go on.
    `repeat(trial_numbers)`: runs seed repeats of those trials (None: this process runs none)."""

    layout: Layout
    study: StudySpec
    repeat: Callable[[list[str]], object] | None = None
    looks: int = 1                                   # the rounds the budget allows (set by the oracle)
    verdicts: dict = field(default_factory=dict)     # the question's verdicts at the last check, at 95%
    held: dict = field(default_factory=dict)         # the same at the look's level (analysis.looks)
    sentences: dict = field(default_factory=dict)    # the question's lines (verdicts with intervals), likewise

    def effects(self) -> effects_module.Effects:
        """The study's effects over the trials and repeats in the results folder now (no importance)."""
        return effects_module.of_study(self.study, trials_module.read_trials(self.layout),
                                       trials_module.read_repeats(self.layout), with_importance=False)

    def _read(self, found: effects_module.Effects) -> None:
        """Keep the question's verdicts and lines of `found`."""
        mine = [e for e in found.effects if e.name in self.study.question]
        self.verdicts = {e.name: e.verdict for e in mine}
        self.held = {e.name: looks_module.verdict_at(e, found.smallest_effect, self.looks) for e in mine}
        self.sentences = {e.name: e.sentence for e in mine}

    def answered(self) -> bool:
        """Whether every question verdict of the last check is decisive at the look's level."""
        return bool(self.held) and all(v in DECISIVE for v in self.held.values())

    def check(self) -> str | None:
        """Why the search may stop now (every question decisive), or None. Runs the seed repeats the question
        needs first (see `repeat_targets`)."""
        found = self.effects()
        self._read(found)
        if not self.answered() and self.repeat is not None and (wanted := self.repeat_targets(found)):
            self.repeat(wanted)
            self._read(self.effects())
        if self.answered():
            done = ", ".join(f"{name}: {verdict}" for name, verdict in self.held.items())
            return f"answered: every question decisive ({done}{self._spread()})"
        return None

    def _spread(self) -> str:
        """The level each look was held to, where there were several."""
        level = looks_module.look_level(self.looks)
        return f"; each of {self.looks} looks held to {100 * level:.1f}%" if self.looks > 1 else ""

    # Seed repeats between rounds. Without a declared `smallest_effect`, `negligible` needs the noise floor, which
    # only seed repeats measure: while a question verdict is undetermined and the floor is unmeasured or rests on
    # fewer than FLOOR_DOF degrees of freedom, the configurations the question's answer rests on (the best trial of
    # each question value, the isolation view's) get REPEAT_SEEDS seed repeats each before the verdicts are
    # computed again. With `smallest_effect` declared the repeats would change no verdict (the contrasts come from
    # the trials), so none run. Repeats run in the process that holds the oracle: a single-process study; with
    # `--workers` or distributed roles the oracle's process serves trials and runs none (search.confirm measures
    # the floor after).
    def repeat_targets(self, found: effects_module.Effects) -> list[str]:
        """The trials that should get seed repeats now: none when the study declares its smallest effect or the
        floor is measured on FLOOR_DOF degrees of freedom; else each question value's best trial with fewer than
        REPEAT_SEEDS repeats."""
        records = found.repeat_records if found.repeat_records is not None else pd.DataFrame()
        _, dof = repeats_module.noise_floor(records)
        if self.study.smallest_effect is not None or dof >= FLOOR_DOF:
            return []
        done = records[records.status == TrialStatus.COMPLETED].trial_id.value_counts() if len(records) else pd.Series()
        best = [str(t) for table in found.question.values() for t in table["best trial"]]
        return [t for t in dict.fromkeys(best) if done.get(t, 0) < REPEAT_SEEDS]

    def stopped_line(self, trials_run: int, reason: str | None) -> str:
        """The search's last line: why it stopped, after how many trials and seed repeats, or which question
        verdicts are not decisive, with their intervals, when the budget ran out."""
        count = len(trials_module.read_repeats(self.layout))
        repeats = f" and {count} seed repeats" if count else ""
        spent = f" (and {count} seed repeats)" if count else ""
        if reason is not None:
            return f"search stopped, {reason}, after {trials_run} trials{repeats}"
        open_ = "; ".join(self.sentences[name] + self._not_at_look(v)
                          for name, v in self.verdicts.items() if self.held.get(name) not in DECISIVE)
        return (f"search stopped: search.max_trials ({trials_run}) spent{spent} with the question not answered "
                f"({open_}); more trials may settle it")

    def _not_at_look(self, verdict: str) -> str:
        """Why a verdict decisive at 95% still leaves the question open."""
        if verdict not in DECISIVE:
            return ""
        return (f" (decisive at 95%, not at the {100 * looks_module.look_level(self.looks):.1f}% each of "
                f"{self.looks} looks needs)")
