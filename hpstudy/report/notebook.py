"""A study as a notebook shows it (`Study._repr_html_`): a compact HTML summary of the answer, the top trials and,
the key plots. No Keras."""
from __future__ import annotations

import base64
import html

from hpstudy.errors import HpstudyError
from hpstudy.report import answer as answer_module, plots, tables
from hpstudy.report.numbers import rounded_text
from hpstudy.text import terminal_text

TOP_TRIALS = 5
_STYLE = ("<style>.hpstudy-summary table{border-collapse:collapse;font-size:0.9em}"
          ".hpstudy-summary th,.hpstudy-summary td{border:1px solid #ccc;padding:0.2em 0.5em;text-align:right}"
          ".hpstudy-summary .scroll{overflow-x:auto;max-width:100%}</style>")


KEY_PLOTS = ("effects", "history")     # what a summary shows; the report has every figure


def key_plots_html(report: tables.Report) -> str:
    """The key plots of the summary (the effects with their intervals, the optimization history), embedded as
    base64 PNGs; "" when the study has nothing to show yet."""
    parts = []
    for study in report.studies:
        for name, caption, data in plots.named_figures(study):
            if name in KEY_PLOTS:
                parts.append(f'<figure><img style="max-width:100%" src="data:image/png;base64,'
                             f'{base64.b64encode(data).decode("ascii")}" alt="{html.escape(caption, quote=True)}">'
                             f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    return "".join(parts)


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
    trials = tables.columns_worth_showing(report.trials)
    if len(trials):
        text, _ = rounded_text(trials)
        parts += [f"<h4>Top {len(trials)} trials</h4>",
                  '<div class="scroll">' + text.to_html(index=False, border=0, escape=True) + "</div>"]
    parts += [key_plots_html(report), f"<p><small>{html.escape(str(path))}: <code>hpstudy report</code> for the "
              "details</small></p></div>"]
    return terminal_text("".join(parts))      # values escaped above; a control character shown as its escape
