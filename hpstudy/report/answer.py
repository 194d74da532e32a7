"""The answer a report opens with, one per study: the question the study asks, its best configuration in one line,
that configuration's test accuracy (with its seed interval where it was confirmed), and the findings: the
hyperparameters whose verdict is an effect, largest first, then those undetermined, negligible or with too few
trials, named as such and never as findings. Rendered here in every format the report has. No Keras.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

import pandas as pd

from hpstudy.analysis import effects as effects_module, statistics, training, verdicts
from hpstudy.results.trials import TRAINED_MARGIN
from hpstudy.text import markdown_text

SHOWN_FINDINGS = 3          # the answer names this many effects; the details below list them all


@dataclass
class Answer:
    """What one study found, in the words the report opens with (see `lines`)."""

    study: str
    question: str
    objective: str
    asks: list[str] = field(default_factory=list)       # the scientific hyperparameters (`question:`)
    best: str = ""                                      # the best configuration in one line
    best_trial: str | None = None
    score: float | None = None
    test_accuracy: float | None = None
    seed_mean: float | None = None                      # test accuracy over its seed repeats, where confirmed
    seed_interval: list[float] | None = None
    seeds: int | None = None
    seed_note: str = ""                                 # what the repeats say of the best against the runner-up
    beats: dict | None = None                           # P(best confirmed beats the runner-up), repeats.Beats.record
    beats_note: str = ""                                # the same in words (repeats.Beats.text)
    findings: list[str] = field(default_factory=list)   # effects, largest first
    undetermined: list[str] = field(default_factory=list)   # "name (about N more trials per value)"
    negligible: list[str] = field(default_factory=list)
    too_few: list[str] = field(default_factory=list)
    pruned: int = 0                                     # trials search.pruning stopped (shown, never estimated)
    untrained: int = 0                                  # completed runs that did not train (analysis.training)
    runs: int = 0                                       # completed runs
    training: list[str] = field(default_factory=list)   # hyperparameters whose values differ in runs that trained
    budget: list[str] = field(default_factory=list)     # per question hyperparameter: its ranking at equal budgets
    searched: bool = True                               # False: one configuration, nothing searched (a baseline)
    direction: str = "max"                              # which way the objective is better: max or min

    def test_line(self) -> str:
        """The best configuration's test accuracy, with its seed interval where it was confirmed."""
        if self.test_accuracy is None:
            return "Test accuracy: not measured yet (the best model is evaluated when the search ends)."
        text = f"Test accuracy: {self.test_accuracy:.4f}"
        if self.seed_interval:
            low, high = self.seed_interval
            seeds = f" {self.seeds}" if self.seeds else ""
            text += f"; over{seeds} new seeds {self.seed_mean:.4f} (95% interval {low:.4f} to {high:.4f})"
        else:
            text += " (one run; not confirmed with seed repeats)"
        return text + (f". {self.seed_note}." if self.seed_note else ".") + (
            f" {self.beats_note}." if self.beats_note else "")

    def finding_lines(self) -> list[str]:
        """The findings (at most SHOWN_FINDINGS), then what was undetermined, negligible, and had too few
        trials."""
        if not self.searched:
            return ["Nothing searched: one configuration (a baseline), so there are no effects and no importance "
                    "to estimate."]
        out = [f"Finding: {line}" for line in self.findings[:SHOWN_FINDINGS]]
        if len(self.findings) > SHOWN_FINDINGS:
            out.append(f"... and {len(self.findings) - SHOWN_FINDINGS} more effects (see the details below).")
        if not self.findings:
            out.append(f"No finding: no searched hyperparameter was shown to change {self.objective} among the "
                       "runs that trained (after Holm's control over the study's contrasts).")
        out += [f"Finding: {line}" for line in self.training]
        if self.untrained and not self.training:
            rule = training.RULE.format(margin=TRAINED_MARGIN)
            out.append(f"Did not train: {self.untrained} of {self.runs} runs ({rule}), not shown to depend on any "
                       "hyperparameter; the effects are estimated on the runs that trained.")
        elif self.untrained:
            out.append(f"Did not train: {self.untrained} of {self.runs} runs; the effects are estimated on the runs "
                       "that trained.")
        if self.undetermined:
            out.append(f"Undetermined (intervals too wide to say, not findings): {', '.join(self.undetermined)}.")
        if self.negligible:
            out.append(f"Negligible (whole interval within the smallest effect that matters): "
                       f"{', '.join(self.negligible)}.")
        if self.too_few:
            out.append(f"Too few trials to say: {', '.join(self.too_few)}.")
        out += [f"At equal budgets: {line}." for line in self.budget]
        if self.pruned:
            out.append(f"Pruned: {self.pruned} trials stopped early by search.pruning; their scores (from curves cut "
                       "short) are in the trials table, left out of the findings.")
        return out

    def lines(self) -> list[str]:
        """The answer as lines of plain text, the same in every format."""
        return [f"Question: {self.question}", f"Best configuration: {self.best}", self.test_line(),
                *self.finding_lines()]

    def record(self) -> dict:
        """The answer as the JSON report's `answer` object (numbers at full precision)."""
        return {"study": self.study, "question": self.question, "asks": list(self.asks), "objective": self.objective,
                "direction": self.direction, "best": self.best, "best_trial": self.best_trial, "score": self.score,
                "test_accuracy": self.test_accuracy, "seed_test_accuracy_mean": self.seed_mean,
                "seed_test_accuracy_ci95": self.seed_interval, "seeds": self.seeds, "seed_note": self.seed_note,
                "beats": self.beats,
                "findings": list(self.findings), "undetermined": list(self.undetermined),
                "negligible": list(self.negligible),
                "too_few_trials": list(self.too_few), "pruned": self.pruned, "did_not_train": self.untrained,
                "runs": self.runs, "training_findings": list(self.training), "budget": list(self.budget)}


# ---------------------------------------------------------------- building
def question_text(comment: str, asks, objective: str, searched: bool = True) -> str:
    """The study's question: the "Question:" of its opening comment, else that comment's first sentence; then
    the scientific hyperparameters it names; without either, a question made from what was searched (or, with
    nothing `searched`, what the one configuration reaches)."""
    text = " ".join(comment.split())
    asked = re.search(r"Question:\s*(.+?\?)(?:\s|$)", text) or re.search(r"Question:\s*(.+?[.!])(?:\s|$)", text)
    sentence = re.match(r"(.+?[.?!])(?:\s|$)", text)
    found = asked or sentence
    said = found.group(1) if found else text
    said = said if len(said) <= 400 else said[:397] + "..."
    if asks and said:
        return f"{said} (asked of {', '.join(asks)})"
    if asks:
        verb = "does" if len(asks) == 1 else "do"
        return f"How {verb} {', '.join(asks)} change {objective}, each at its best setting of the others?"
    if not said and not searched:
        return f"What {objective} does this one configuration reach (nothing searched: a baseline)?"
    return said or f"Which of the searched configurations gives the best {objective}?"


def _size(contrast) -> float:
    return abs(contrast.difference) if contrast.difference is not None else 0.0


def _findings(fx: effects_module.Effects) -> tuple[list[str], list[str], list[str], list[str]]:
    """(effect lines, largest first, an interaction of the question's hyperparameters that is an effect among
    them; undetermined names, each with roughly how many more trials per value would settle it; negligible names;
    names with too few trials)."""
    found = [(_size(d.interaction), d.sentence) for d in fx.dependences if d.interaction.verdict == statistics.EFFECT]
    open_, small, few = [], [], []
    for effect in fx.effects:
        if effect.verdict == statistics.EFFECT:
            real = sorted((c for c in effect.contrasts if c.verdict == statistics.EFFECT), key=_size, reverse=True)
            if not real:        # an effect on whether runs train only: its finding is the training line
                continue
            more = f" (and {len(real) - 1} more of its values)" if len(real) > 1 else ""
            found.append((_size(real[0]), f"{effect.name} {verdicts.contrast_text(real[0], fx.objective)}{more}"))
        elif effect.verdict == statistics.UNDETERMINED:
            needed = [c.more for c in effect.outcomes if c.verdict == statistics.UNDETERMINED and c.more]
            open_.append(effect.name + (f" ({verdicts.more_text(max(needed))})" if needed else ""))
        elif effect.verdict == statistics.NEGLIGIBLE:
            small.append(effect.name)
        else:
            few.append(effect.name)
    found.sort(key=lambda pair: pair[0], reverse=True)
    return [text for _, text in found], open_, small, few


def _best_from_table(table: pd.DataFrame, names: list[str], minimize: bool) -> dict:
    """best.json's fields from the trials table, for a study that has no best.json yet (still running): the best
    completed trial, or the best pruned one when none completed."""
    done = effects_module.completed(table)
    done = done if len(done) else effects_module.pruned_trials(table)
    if not len(done):
        return {}
    row = done.loc[done["score"].idxmin() if minimize else done["score"].idxmax()]
    values = {n: row[n] for n in names if n in row and not (not isinstance(row[n], str) and pd.isna(row[n]))}
    return {"trial_id": row["trial_id"], "score": float(row["score"]), "hyperparameters": values}


def _seed_line(answer: Answer, confirmed: dict) -> None:
    """Fill the seed interval of the best trial's test accuracy and what the repeats say of it."""
    mine = [c for c in confirmed.get("configurations") or [] if isinstance(c, dict)
            and str(c.get("trial_id")) == str(answer.best_trial)]
    interval = mine[0].get("test_accuracy_ci95") if mine else None
    numbers = [mine[0].get("test_accuracy_mean"), *(interval if isinstance(interval, list) else [])] if mine else []
    if len(numbers) == 3 and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in numbers):
        answer.seed_mean, answer.seed_interval = numbers[0], numbers[1:]     # a damaged record: no interval shown
        answer.seeds = mine[0].get("n") if isinstance(mine[0].get("n"), int) else None
    winner, runner_up = confirmed.get("winner"), confirmed.get("runner_up")
    if winner is not None and str(winner) != str(answer.best_trial):
        answer.seed_note = f"By its seed repeats' mean, trial {winner} is the best instead"
    elif runner_up is not None and confirmed.get("distinguishable") is False:
        answer.seed_note = (f"Over seeds it is not distinguishable from the runner-up (trial {runner_up}): "
                            "either is as good an answer")
    elif runner_up is not None and confirmed.get("distinguishable"):
        answer.seed_note = f"Over seeds it beats the runner-up (trial {runner_up}) beyond the noise"


def answer_of(name: str, study, best: dict, table: pd.DataFrame, fx: effects_module.Effects,
              comment: str = "") -> Answer:
    """The answer of one study: `study` its spec, `best` its best.json ({} if none), `table` its trials, `fx` its
    effects, `comment` its study file's opening comment."""
    names = [t.name for t in study.tunables()]
    best = best or _best_from_table(table, names, fx.minimize)
    answer = Answer(name, question_text(comment, study.question, fx.objective, bool(names)), fx.objective,
                    list(study.question), searched=bool(names), direction="min" if fx.minimize else "max")
    if best.get("trial_id") is not None:
        values = best.get("hyperparameters") or {}
        shown = ", ".join(f"{k}={verdicts.show(v)}" for k, v in values.items()) or "(nothing searched)"
        score = best.get("score")
        answer.best_trial, answer.score = str(best["trial_id"]), score
        answer.best = shown + f" (trial {best['trial_id']}" + (
            f", {fx.objective} {score:.4f})" if isinstance(score, (int, float)) else ")")
        test = best.get("test_accuracy")
        answer.test_accuracy = test if isinstance(test, (int, float)) and not isinstance(test, bool) else None
        _seed_line(answer, best.get("confirmed") or {})
    else:
        answer.best = "none yet: no trial has completed"
    answer.findings, answer.undetermined, answer.negligible, answer.too_few = _findings(fx)
    if fx.beats is not None:
        answer.beats, answer.beats_note = fx.beats.record(), fx.beats.text()
    answer.pruned, answer.untrained, answer.runs = fx.pruned, fx.untrained, fx.trials
    answer.training = [t.sentence for t in fx.training if t.verdict == statistics.EFFECT]
    answer.budget = [sentence for _, sentence in fx.budget.values()]
    return answer


# ---------------------------------------------------------------- rendering
def _label(line: str) -> tuple[str, str]:
    head, sep, rest = line.partition(": ")
    return (head, rest) if sep and len(head) < 70 else ("", line)


def markdown(answer: Answer, several: bool = False) -> str:
    """The answer as markdown: a heading and one bullet per line, each led by its label in bold."""
    title = f"## The answer: {markdown_text(answer.study)}" if several else "## The answer"
    bullets = [f"- **{markdown_text(head)}:** {markdown_text(rest)}" if head else f"- {markdown_text(rest)}"
               for head, rest in map(_label, answer.lines())]
    return "\n".join([title, "", *bullets, ""])


def html_block(answer: Answer, several: bool = False, heading: int = 2) -> str:
    """The answer as an HTML section (escaped), for the report page and a notebook."""
    esc = html.escape
    title = f"The answer: {answer.study}" if several else "The answer"
    items = [f"<li><b>{esc(head)}:</b> {esc(rest)}</li>" if head else f"<li>{esc(rest)}</li>"
             for head, rest in map(_label, answer.lines())]
    return (f'<section class="answer"><h{heading}>{esc(title)}</h{heading}><ul>' + "".join(items)
            + "</ul></section>")


def latex(answer: Answer, escape, several: bool = False) -> str:
    """The answer as LaTeX text (a paragraph heading and an itemize list); `escape` escapes text."""
    title = f"The answer: {answer.study}" if several else "The answer"
    items = [rf"\item \textbf{{{escape(head)}:}} {escape(rest)}" if head else rf"\item {escape(rest)}"
             for head, rest in map(_label, answer.lines())]
    return "\n".join([rf"\paragraph{{{escape(title)}}}", r"\begin{itemize}", *items, r"\end{itemize}", ""])
