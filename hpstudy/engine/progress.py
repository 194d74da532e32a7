"""What a running study prints: one line per trial, and a progress bar on a terminal."""
from __future__ import annotations

import sys
import time

from tqdm import tqdm


def format_value(value) -> str:
    """A hyperparameter value as the progress line shows it (floats to 4 significant digits)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class Progress:
    """One line per finished trial on `stream`; a bar of trials (and epochs) on stderr when it is a terminal."""

    def __init__(self, total_trials: int | None, objective: str, *, done: int = 0, stream=None):
        self.objective = objective
        self.stream = stream or sys.stdout
        # disable=None: tqdm shows the bar only when stderr is a terminal, so logs stay clean.
        self.bar = tqdm(total=total_trials, initial=done, unit="trial", file=sys.stderr, disable=None,
                        dynamic_ncols=True, leave=False)
        self.started = {}

    def trial_begin(self, trial_id: str) -> None:
        """A trial started: the bar names it."""
        self.started[trial_id] = time.perf_counter()
        self.bar.set_description(f"trial {trial_id}")

    def epoch_end(self, trial_id: str, epoch: int, logs: dict) -> None:
        """An epoch ended (counted from 0 by Keras, shown from 1): the bar shows it and the objective."""
        value = logs.get(self.objective)
        self.bar.set_postfix_str(f"epoch {epoch + 1}" + (f" {self.objective}={value:.4f}" if value is not None else ""))

    def trial_end(self, trial_id: str, status: str, values: dict, score, message: str = "") -> None:
        """A trial ended: its line (outcome, seconds, hyperparameters) and one more step of the bar."""
        seconds = time.perf_counter() - self.started.pop(trial_id, time.perf_counter())
        params = " ".join(f"{k}={format_value(v)}" for k, v in values.items() if not k.startswith("tuner/"))
        if status == "COMPLETED" and score is not None:
            outcome = f"{self.objective}={score:.4f}"
        else:
            outcome = f"{status}: {message}" if message else status
        self.bar.write(f"trial {trial_id:>4}  {outcome}  {seconds:6.1f}s  {params}", file=self.stream)
        self.bar.update(1)

    def close(self) -> None:
        """Remove the bar (the lines stay)."""
        self.bar.close()
