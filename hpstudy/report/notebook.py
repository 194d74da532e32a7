"""A study as a notebook shows it (`Study._repr_html_`): a compact HTML summary of the answer, the top trials and,
where `key_plots_html` provides them, the key plots. No Keras."""
from __future__ import annotations

import html

from hpstudy.errors import HpstudyError
from hpstudy.report import answer as answer_module
from hpstudy.report import tables
from hpstudy.report.numbers import readable

TOP_TRIALS = 5
_STYLE = ("<style>.hpstudy-summary table{border-collapse:collapse;font-size:0.9em}"
          ".hpstudy-summary th,.hpstudy-summary td{border:1px solid #ccc;padding:0.2em 0.5em;text-align:right}"
          ".hpstudy-summary .scroll{overflow-x:auto;max-width:100%}</style>")


def key_plots_html(report: tables.Report) -> str:
    """HOOK for the key plots of the summary (hpstudy.report.plots.figures(), once it exists): HTML with the
    figures embedded, or "" (today: no plots in the summary)."""
    return ""


def summary_html(path, *, top: int = TOP_TRIALS) -> str:
    """The summary of the study in results folder `path`: its answer, its `top` trials and the key plots; a
    study that cannot be read says why in one line instead."""
    try:
        report = tables.build([path], top=top)
    except HpstudyError as err:
        return f"<p><b>hpstudy:</b> {html.escape(str(err))}</p>"
    study = report.studies[0]
    parts = [f'<div class="hpstudy-summary">{_STYLE}<h3>Study {html.escape(study.name)}</h3>',
             answer_module.html_block(study.answer, heading=4) if study.answer is not None else ""]
    trials = tables.shown(report.trials)
    if len(trials):
        text, _ = readable(trials)
        parts += [f"<h4>Top {len(trials)} trials</h4>",
                  '<div class="scroll">' + text.to_html(index=False, border=0, escape=True) + "</div>"]
    parts += [key_plots_html(report), f"<p><small>{html.escape(str(path))}: <code>hpstudy report</code> for the "
              "details</small></p></div>"]
    return "".join(parts)
