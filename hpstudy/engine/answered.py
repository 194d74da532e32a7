"""`search.until: answered`: a design study (`tuner: design`) stops once its question is answered.

After each balanced round the question's verdicts are computed from the trials so far, as the report computes
them; while any is not decisive (`DECISIVE`), another round runs, up to `search.max_trials`. The oracle asks
`Answered.check` before it starts a round; the search's last line says why it stopped.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from hpstudy.analysis import effects as effects_module
from hpstudy.results import trials as trials_module
from hpstudy.results.layout import Layout

DECISIVE = ("effect", "negligible")       # the verdicts that answer a question; the others ask for more trials


@dataclass
class Answered:
    """The stopping rule of one study: `check()` is the verdicts' reason to stop, or None to go on."""

    layout: Layout
    study: object
    verdicts: dict = field(default_factory=dict)     # the question's verdicts at the last check

    def question_verdicts(self) -> dict[str, str]:
        """Each question hyperparameter's verdict over the trials in the results folder now."""
        found = effects_module.of_study(self.study, trials_module.read_trials(self.layout),
                                        trials_module.read_repeats(self.layout), with_importance=False)
        return {e.name: e.verdict for e in found.effects if e.name in self.study.question}

    def check(self) -> str | None:
        """Why the search may stop now (every question decisive), or None."""
        self.verdicts = self.question_verdicts()
        if self.verdicts and all(v in DECISIVE for v in self.verdicts.values()):
            done = ", ".join(f"{name}: {verdict}" for name, verdict in self.verdicts.items())
            return f"answered: every question decisive ({done})"
        return None

    def unanswered(self) -> str:
        """The question's verdicts that are not decisive, for the line of a study whose budget ran out."""
        return ", ".join(f"{name}: {verdict}" for name, verdict in self.verdicts.items() if verdict not in DECISIVE)
