"""Trials and repeats tables given to `hpstudy analyze` that cannot be analysed: a missing file, a folder, bytes
that are not a CSV, an empty file, a missing objective or hyperparameter column, a non-numeric objective, one
usable row, an objective with no number, --log on words, --question of an unknown column, repeats without seeds.
Each is one line naming the file."""
from __future__ import annotations

from tests.hostile_inputs import case

GOOD = "trial_id,status,model.head,model.dropout,val_accuracy\n" + "".join(
    f"{i},COMPLETED,{'gap' if i % 2 else 'dense'},{0.2 if i % 3 else 0.5},{0.8 + 0.01 * (i % 4)}\n" for i in range(8))


def _table(ctx, text: str | bytes = GOOD, name: str = "bad.csv"):
    path = ctx.tmp / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@case("analyze-missing-file", "nothing.csv: no such file")
def _missing(ctx):
    return ["analyze", ctx.tmp / "nothing.csv", "--objective", "val_accuracy"]


@case("analyze-a-folder", "is a folder, not a CSV table")
def _folder(ctx):
    (ctx.tmp / "results").mkdir()
    return ["analyze", ctx.tmp / "results", "--objective", "val_accuracy"]


@case("analyze-binary-file", "bad.csv: not a CSV table")
def _binary(ctx):
    return ["analyze", _table(ctx, b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x00" * 20), "--objective", "val_accuracy"]


@case("analyze-empty-file", "bad.csv: not a CSV table")
def _empty(ctx):
    return ["analyze", _table(ctx, ""), "--objective", "val_accuracy"]


@case("analyze-missing-objective", "bad.csv: no column 'accuracy' (--objective)")
def _no_objective(ctx):
    return ["analyze", _table(ctx), "--objective", "accuracy"]


@case("analyze-absent-hyperparameter", "bad.csv: no column 'model.kernel' (--hyperparameters)")
def _no_hyperparameter(ctx):
    return ["analyze", _table(ctx), "--objective", "val_accuracy", "--hyperparameters", "model.head,model.kernel"]


@case("analyze-non-numeric-objective", "bad.csv: column 'val_accuracy' (--objective) is not numeric: 'high'")
def _words(ctx):
    return ["analyze", _table(ctx, GOOD.replace(",0.81\n", ",high\n", 1)), "--objective", "val_accuracy"]


@case("analyze-one-row", "bad.csv: only 1 completed trial with a finite 'val_accuracy'")
def _one_row(ctx):
    return ["analyze", _table(ctx, "\n".join(GOOD.splitlines()[:2]) + "\n"), "--objective", "val_accuracy"]


@case("analyze-objective-all-blank", "bad.csv: no completed trial has a finite 'val_accuracy'")
def _all_nan(ctx):
    rows = [",".join(line.split(",")[:-1]) + "," for line in GOOD.splitlines()[1:]]
    return ["analyze", _table(ctx, GOOD.splitlines()[0] + "\n" + "\n".join(rows) + "\n"), "--objective",
            "val_accuracy"]


@case("analyze-none-completed", "bad.csv: no completed trial")
def _none_completed(ctx):
    return ["analyze", _table(ctx, GOOD.replace(",COMPLETED,", ",FAILED,")), "--objective", "val_accuracy"]


@case("analyze-log-of-words", "bad.csv: --log model.head: its values must be positive numbers")
def _log_words(ctx):
    return ["analyze", _table(ctx), "--objective", "val_accuracy", "--log", "model.head"]


@case("analyze-unknown-question", "bad.csv: --question 'model.width' is not one of the hyperparameters")
def _question(ctx):
    return ["analyze", _table(ctx), "--objective", "val_accuracy", "--question", "model.width"]


@case("analyze-repeats-without-seed", "repeats.csv: no column 'seed'")
def _repeats(ctx):
    repeats = _table(ctx, "trial_id,val_accuracy\n1,0.8\n1,0.81\n", "repeats.csv")
    return ["analyze", _table(ctx), "--objective", "val_accuracy", "--repeats", repeats]


@case("analyze-only-the-objective", "bad.csv: no hyperparameter columns besides 'val_accuracy'")
def _no_hyperparameters(ctx):
    return ["analyze", _table(ctx, "trial_id,val_accuracy\n1,0.8\n2,0.7\n"), "--objective", "val_accuracy"]


@case("analyze-objective-as-hyperparameter", "bad.csv: 'val_accuracy' is the objective, not a hyperparameter")
def _objective_named(ctx):
    return ["analyze", _table(ctx), "--objective", "val_accuracy", "--hyperparameters", "model.head,val_accuracy"]
