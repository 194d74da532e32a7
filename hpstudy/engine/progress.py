"""What a running study prints: one line per trial, and a progress bar on a terminal, or in a notebook (Jupyter,
Colab, Kaggle) an HTML bar updated in place (IPython's display, no ipywidgets needed)."""
from __future__ import annotations

import html
import sys
import time

from tqdm import tqdm

from hpstudy.results.status import TrialStatus
from hpstudy.text import one_line


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
        if in_notebook():
            self.bar = NotebookBar(total_trials, done)
        else:   # disable=None: tqdm shows the bar only when stderr is a terminal, so logs stay clean.
            self.bar = tqdm(total=total_trials, initial=done, unit="trial", file=sys.stderr, disable=None,
                            dynamic_ncols=True, leave=False)
        self.started: dict[str, float] = {}            # trial id -> when it began (time.perf_counter)

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
        if status == TrialStatus.COMPLETED and score is not None:
            outcome = f"{self.objective}={score:.4f}"
        elif status == TrialStatus.PRUNED and score is not None:      # `message`: at which epoch, and why
            outcome = f"{self.objective}={score:.4f}  PRUNED {message}"
        else:
            outcome = f"{status}: {message}" if message else status
        # One line, whatever a value or a failure message holds: no newline or escape sequence reaches the terminal.
        self.bar.write(one_line(f"trial {trial_id:>4}  {outcome}  {seconds:6.1f}s  {params}"), file=self.stream)
        self.bar.update(1)

    def close(self) -> None:
        """Remove the bar (the lines stay)."""
        self.bar.close()


def in_notebook() -> bool:
    """Whether this process is a notebook's kernel (Jupyter, Colab, Kaggle): IPython already imported, and its
    shell a kernel's, not a terminal's. IPython is never imported here."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    if shell is None:
        return False
    if shell.__class__.__name__ in ("ZMQInteractiveShell", "Shell"):    # Jupyter and Kaggle; Colab's
        return True
    try:
        return "IPKernelApp" in shell.config
    except Exception:       # a shell without a config: not a kernel
        return False


class NotebookBar:
    """The bar of trials (and epochs) as one HTML block of a notebook's output, redrawn in place on every step
    (IPython's display with a display_id: no carriage returns, no ipywidgets). The same calls as tqdm's bar."""

    def __init__(self, total: int | None, done: int = 0):
        from IPython.display import HTML, display
        self._html, self.total, self.done = HTML, total, done
        self.description, self.postfix, self.closed = "", "", False
        self.handle = display(HTML(self.render()), display_id=True)

    def render(self) -> str:
        """The bar as HTML: a <progress> element, the trials done, the trial and epoch running."""
        total = f"/{self.total}" if self.total else ""
        most = self.total or (self.done if self.closed else None)      # no total (a grid, Hyperband): a busy bar
        bar = (f'<progress value="{self.done}" max="{most}" style="width:16em"></progress>' if most
               else '<progress style="width:16em"></progress>')
        state = "done" if self.closed else " ".join(filter(None, (self.description, self.postfix)))
        return (f'<div class="hpstudy-progress" style="font-family:monospace">{bar} {self.done}{total} trials'
                f"{' &middot; ' + html.escape(state) if state else ''}</div>")

    def _draw(self) -> None:
        if self.handle is not None:
            self.handle.update(self._html(self.render()))

    def set_description(self, text: str) -> None:
        """Name the trial running."""
        self.description = text
        self._draw()

    def set_postfix_str(self, text: str) -> None:
        """Show the epoch running and the objective."""
        self.postfix = text
        self._draw()

    def write(self, text: str, file=None) -> None:
        """A trial's line, printed below the bar."""
        print(text, file=file or sys.stdout, flush=True)

    def update(self, steps: int = 1) -> None:
        """One more trial done."""
        self.done += steps
        self.postfix = ""
        self._draw()

    def close(self) -> None:
        """The search ended: the bar stays, full, saying so."""
        self.closed = True
        self._draw()
