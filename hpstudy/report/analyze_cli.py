"""`hpstudy analyze`'s flags and handler (kept beside its module so that cli.py stays one screen per command).
Nothing heavy is imported until the command runs: `hpstudy --help` stays instant."""
from __future__ import annotations

import sys


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def add(commands) -> None:
    """The `analyze` subcommand of the `hpstudy` command's parser (`commands`: its subparsers)."""
    analyze = commands.add_parser("analyze", help="the report's effects of any tool's trials table (a CSV file: a "
                                  "column per hyperparameter, the objective, optional status and trial_id)")
    analyze.add_argument("trials", metavar="TRIALS.csv", help="the trials table, e.g. results/quickstart/trials.csv "
                         "or an Optuna trials_dataframe() written as CSV (params_ prefixes are taken off)")
    analyze.add_argument("--objective", required=True, metavar="COLUMN", help="the objective's column")
    analyze.add_argument("--direction", choices=("max", "min"), help="which way is better (default: min for a "
                         "loss, max for an accuracy, by the column's name)")
    analyze.add_argument("--hyperparameters", type=_names, metavar="A,B,C", help="the columns to analyse (default: "
                         "every column but the objective, trial_id, status and known metrics)")
    analyze.add_argument("--log", type=_names, default=[], metavar="A,B", help="numbers searched on a log scale "
                         "(fitted on log10)")
    analyze.add_argument("--question", type=_names, default=[], metavar="A,B", help="the scientific "
                         "hyperparameters, each compared at its best setting of the others")
    analyze.add_argument("--repeats", metavar="REPEATS.csv", help="seed repeats: rows of trial_id, seed and the "
                         "objective (results/<study>/repeats.csv); they give the noise floor")
    analyze.add_argument("--format", default="markdown", choices=("markdown", "json", "html"))
    analyze.set_defaults(handler=run)


def run(args) -> int:
    """Print the analysis of `args.trials` in `args.format`."""
    from hpstudy.report import analyze
    found = analyze.analyze_files(args.trials, args.objective, repeats=args.repeats, direction=args.direction,
                                  hyperparameters=args.hyperparameters, log=args.log, question=args.question)
    sys.stdout.write(found.render(args.format))
    return 0
