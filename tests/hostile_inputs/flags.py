"""Command-line flags and the distributed flags."""
from tests.hostile_inputs import case


@case("report_of_a_missing_folder", "no-such-folder")
def _(ctx):
    return ["report", ctx.tmp / "no-such-folder"]


@case("run_with_a_chief_and_no_role", "need --role")
def _(ctx):
    return ["run", ctx.study_file(), "--chief", "127.0.0.1:1"]


@case("a_thousand_local_workers", "--workers 1000: at most")
def _(ctx):
    return ["run", ctx.study_file(), "--workers", "1000", "--results-dir", ctx.tmp / "results"]


@case("chief_timeout_without_a_role", "need --role")
def _(ctx):
    return ["run", ctx.study_file(), "--chief-timeout", "5"]


@case("chief_timeout_for_a_chief", "are for --role worker")
def _(ctx):
    return ["run", ctx.study_file(), "--role", "chief", "--chief-timeout", "5"]


@case("results_dir_is_a_file", "cannot make the results folder (Not a directory)")
def _(ctx):
    (ctx.tmp / "plain").write_text("x")
    return ["run", ctx.study_file(), "--results-dir", ctx.tmp / "plain"]


@case("report_output_in_a_missing_folder", "cannot write the report")
def _(ctx):
    return ["report", ctx.results(), "--output", ctx.tmp / "no" / "such" / "report.md"]
