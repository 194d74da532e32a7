"""Command-line flags and the distributed flags."""
from tests.hostile_inputs import case


@case("report_of_a_missing_folder", "no-such-folder")
def _(ctx):
    return ["report", ctx.tmp / "no-such-folder"]


@case("run_with_a_chief_and_no_role", "need --role")
def _(ctx):
    return ["run", ctx.study_file(), "--chief", "127.0.0.1:1"]
