"""Values drawn from data (hyperparameter values, class names, a study's question, failure messages) made safe in
each kind of output hpstudy writes, one helper per kind: a spreadsheet cell (`safe_cell`, read back by
`original_cell`), a terminal (`terminal_text`, `one_line`), an exception inside a message (`exception_line`),
markdown (`markdown_text`), JSON (`json_ready`) and a matplotlib figure (`literal_figure`). No Keras, no pandas
or matplotlib at import (`hpstudy --help` stays quick)."""
from __future__ import annotations

import html
import math
import re
import weakref

# OWASP "CSV injection": a cell starting with one of these is a formula (or becomes one) to Excel, LibreOffice
# and Google Sheets. Such a cell is written with a single quote in front, as OWASP recommends; a cell that starts
# with a quote gets one more, so that reading back (one leading quote removed) always gives the original value.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CELL_QUOTE = "'"
# ANSI escape sequences (CSI and OSC, as terminals read them): dropped whole from markdown, not just their ESC.
_ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?)|\x9b[0-?]*[ -/]*[@-~]")
_LITERAL_FORMATTERS: weakref.WeakSet = weakref.WeakSet()     # the tick formatters `literal_figure` made
_NEWLINES = re.compile(r"\r\n|\r|\n|\x0b|\x0c|\x85|\u2028|\u2029")


def _visible(c: str) -> str:
    """A character as it is safe to show: itself when printable, else its escape (ESC as \\x1b, U+202E as
    \\u202e), so nothing unseen can move the cursor, recolour, or reorder a line."""
    return c if c.isprintable() else repr(c)[1:-1]


def one_line(message: str) -> str:
    """``message`` with every character that could break or forge a line (a newline, a control character, an
    undecodable byte) written as its escape: what `hpstudy` prints after "hpstudy: error: "."""
    return "".join(_visible(c) for c in str(message))


EXCEPTION_LINE_LIMIT = 200     # characters of an exception's reason inside a one-line message


def exception_line(err: BaseException | str, *, with_class: bool = False) -> str:
    """Why `err` happened, in one line of at most EXCEPTION_LINE_LIMIT characters ("..." where cut): an OS
    error's own words (its strerror, without the errno and path the message already names), else its message
    with every line break and run of spaces made one space, else its class's name. `with_class` puts
    `ClassName: ` in front. A string (a parser's message) is squashed the same way."""
    if isinstance(err, BaseException):
        text = " ".join(str(getattr(err, "strerror", None) or err).split())
        name = type(err).__name__
        text = f"{name}: {text}" if with_class and text else text or name
    else:
        text = " ".join(str(err).split())
    return text if len(text) <= EXCEPTION_LINE_LIMIT else text[:EXCEPTION_LINE_LIMIT - 3] + "..."


def terminal_text(text: str) -> str:
    """Text for a terminal: line breaks (LF, CRLF) and tabs kept, every other control character (a lone CR that
    would overwrite a line, C0, C1, ESC and so every escape sequence, bidirectional overrides) written as its
    escape."""
    return "\r\n".join("".join(c if c in "\n\t" else _visible(c) for c in part) for part in str(text).split("\r\n"))


def safe_cell(value):
    """A value for a CSV cell: a string that a spreadsheet would read as a formula (see FORMULA_START), or that
    starts with a quote, gets a single quote in front; anything else, numbers included (-0.5 stays a number), is
    returned as it is."""
    if isinstance(value, str) and value.startswith((*FORMULA_START, CELL_QUOTE)):
        return CELL_QUOTE + value
    return value


def original_cell(value):
    """The value `safe_cell` was given, from what it returned (a string read back from a CSV hpstudy wrote)."""
    if isinstance(value, str) and value.startswith(CELL_QUOTE):
        return value[1:]
    return value


def csv_text(table) -> str:
    """A pandas DataFrame as the CSV text hpstudy writes: every string cell and column name through `safe_cell`,
    no index, rows ending in CRLF. Read it back with `read_csv`."""
    safe = table.rename(columns=safe_cell)
    for column in _text_columns(safe):
        safe[column] = safe[column].map(safe_cell)
    # Rows end in CRLF (RFC 4180), so that a cell holding a carriage return is quoted too: Python's csv quotes only
    # the characters of its line ending, and a bare CR in a cell starts a new row (and a formula) in a spreadsheet.
    return safe.to_csv(index=False, lineterminator="\r\n")


def _text_columns(table) -> list:
    """The columns of `table` that may hold strings (object or pandas's string dtype; numbers never do)."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype
    return [column for column, dtype in table.dtypes.items() if not (is_numeric_dtype(dtype) or is_bool_dtype(dtype))]


def read_csv(source, **options):
    """A CSV hpstudy wrote (`csv_text`), read with pandas.read_csv(`source`, **options), each string cell and column
    name as it was before `safe_cell`.

    Args:
        source: the CSV file (a path or anything pandas.read_csv reads: trials.csv, repeats.csv, a report's CSV).
        **options: pandas.read_csv's own options.

    Returns:
        The table as a pandas DataFrame.
    """
    import pandas as pd
    table = pd.read_csv(source, **options)
    table = table.rename(columns=original_cell)
    for column in _text_columns(table):
        table[column] = table[column].map(original_cell)
    return table


def markdown_text(value) -> str:
    """A value for markdown (a table cell or a line): ANSI escape sequences dropped, HTML's `&`, `<`, `>` as
    entities (no tag ever reaches a renderer), `|` escaped (a cell never splits), `$` escaped (GitHub's math never
    starts), a line break as <br> (a row never breaks), and any other control character written as its escape."""
    text = _ANSI.sub("", str(value))
    # Backslashes first: a `\` before a `|` must not turn the `\|` written for the pipe into an escaped backslash.
    text = html.escape(text.replace("\\", "\\\\"), quote=False).replace("|", r"\|").replace("$", r"\$")
    return "<br>".join(terminal_text(part).replace("\t", " ") for part in _NEWLINES.split(text))


def json_ready(value):
    """`value` (dicts, lists, tuples, numbers, numpy scalars) with every NaN and infinity as None, so that
    json.dumps(..., allow_nan=False) writes standard JSON (null), which every JSON reader accepts."""
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if isinstance(value, float) or type(value).__name__.startswith("float"):     # numpy's float16..float128
        try:
            return None if not math.isfinite(value) else value
        except TypeError:
            return value
    return value


def literal_text(text: str) -> str:
    """A label for matplotlib drawn as written: every `$` escaped, so that no pair of them is read as mathtext (a
    class folder `$5-$10 bills`, `$\\frac{$`); matplotlib shows `\\$` as `$` in plain text."""
    return str(text).replace("$", r"\$")


def literal_figure(fig):
    """`fig` with every text drawn as written (titles, axis labels, legends, annotations, and tick labels set from
    data), never as mathtext; number ticks keep matplotlib's formatting (a log axis's 10^-3). Returns `fig`."""
    from matplotlib.text import Text
    from matplotlib.ticker import FixedFormatter, FuncFormatter
    for axes in fig.axes:
        for axis in (axes.xaxis, axes.yaxis):
            # Labels given as text (set_xticks(ticks, labels), set_ticklabels) are one of these two formatters;
            # hpstudy formats no number with them. Each is wrapped once: a figure drawn twice is escaped once.
            for minor, formatter in ((False, axis.get_major_formatter()), (True, axis.get_minor_formatter())):
                if isinstance(formatter, (FixedFormatter, FuncFormatter)) and formatter not in _LITERAL_FORMATTERS:
                    literal = FuncFormatter(lambda x, pos, given=formatter: literal_text(given(x, pos)))
                    _LITERAL_FORMATTERS.add(literal)
                    (axis.set_minor_formatter if minor else axis.set_major_formatter)(literal)
    tick_labels = {id(label) for axes in fig.axes for axis in (axes.xaxis, axes.yaxis)
                   for tick in (*axis.majorTicks, *axis.minorTicks) for label in (tick.label1, tick.label2)}
    for text in fig.findobj(Text):
        if id(text) not in tick_labels:      # those are drawn from their formatter (above)
            text.set_parse_math(False)
    return fig
