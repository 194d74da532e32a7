"""The Python API refuses what the command line refuses, in the same words (hpstudy.study.options holds the rules).

Every option of every command is walked from the argument parser itself, so an option added to the command line
without a case here (a bad value, or the reason it has none) fails the first test.
"""
import argparse
import re

import pytest

from hpstudy import api, cli
from hpstudy.errors import HpstudyError

STUDY, FOLDER = "study.yaml", "results/study"    # never read: every check comes before any file is opened
ROLE_WORKER = ["--role", "worker", "--chief", "h:1"]

# (command, option) -> cases of (the command line's words after `hpstudy`, the same values given to the API).
BAD = {
    ("run", "--max-trials"): [(["run", STUDY, "--max-trials", "0"], lambda: api.run(STUDY, max_trials=0))],
    ("run", "--epochs"): [(["run", STUDY, "--epochs", "-2"], lambda: api.run(STUDY, epochs=-2))],
    ("run", "--workers"): [(["run", STUDY, "--workers", "0"], lambda: api.run_workers(STUDY, 0)),
                           (["run", STUDY, "--workers", "two"], lambda: api.run_workers(STUDY, "two"))],
    ("run", "--role"): [(["run", STUDY, "--role", "boss"], lambda: api.distributed_role("boss"))],
    ("run", "--bind"): [(["run", STUDY, "--role", "chief", "--bind", "h:99999"],
                         lambda: api.distributed_role("chief", bind="h:99999"))],
    ("run", "--chief"): [(["run", STUDY, "--role", "worker"], lambda: api.distributed_role("worker")),
                         (["run", STUDY, "--role", "worker", "--chief", "h:0"],
                          lambda: api.distributed_role("worker", chief="h:0"))],
    ("run", "--worker-id"): [(["run", STUDY, *ROLE_WORKER, "--worker-id", "my-chief"],
                              lambda: api.distributed_role("worker", chief="h:1", worker_id="my-chief"))],
    ("run", "--worker-timeout"): [
        (["run", STUDY, "--role", "chief", "--worker-timeout", "0"],
         lambda: api.distributed_role("chief", worker_timeout=0)),
        (["run", STUDY, "--role", "chief", "--worker-timeout", "3"],
         lambda: api.distributed_role("chief", worker_timeout=3)),
        (["run", STUDY, "--workers", "2", "--worker-timeout", "3"],
         lambda: api.run_workers(STUDY, 2, worker_timeout=3))],
    ("run", "--chief-timeout"): [(["run", STUDY, *ROLE_WORKER, "--chief-timeout", "-1"],
                                  lambda: api.distributed_role("worker", chief="h:1", chief_timeout=-1))],
    ("confirm", "--top"): [(["confirm", FOLDER, "--top", "-1"], lambda: api.confirm(FOLDER, top=-1)),
                           (["confirm", FOLDER, "--top", "2.5"], lambda: api.confirm(FOLDER, top=2.5)),
                           (["confirm", FOLDER, "--top", "True"], lambda: api.confirm(FOLDER, top=True))],
    ("confirm", "--seeds"): [(["confirm", FOLDER, "--seeds", "1"], lambda: api.confirm(FOLDER, seeds=1)),
                             (["confirm", FOLDER, "--seeds", "0"], lambda: api.confirm(FOLDER, seeds=0))],
    ("report", "--format"): [(["report", FOLDER, "--format", "xml"], lambda: api.report([FOLDER], format="xml"))],
    ("report", "--top"): [(["report", FOLDER, "--top", "0"], lambda: api.report([FOLDER], top=0))],
    ("report", "--best"): [(["report", FOLDER, "--best", "-1"], lambda: api.report([FOLDER], best=-1))],
    ("serve", "--port"): [(["serve", FOLDER, "--port", "65536"], lambda: api.serve([FOLDER], port=65536)),
                          (["serve", FOLDER, "--port", "-1"], lambda: api.serve([FOLDER], port=-1))],
    ("data info", "--image-size"): [(["data", "info", "folder", "--image-size", "4"],
                                     lambda: api.dataset_info("folder", image_size=4))],
    ("data info", "--label-mode"): [(["data", "info", "cifar100", "--label-mode", "medium"],
                                     lambda: api.dataset_info("cifar100", label_mode="medium"))],
    ("data download", "--slug"): [(["data", "download", "mnist", "--slug", "a/b"],
                                   lambda: api.download("mnist", slug="a/b"))],
    ("export", "--rank"): [(["export", FOLDER, "--to", "m.keras", "--rank", "-1"],
                            lambda: api.export(FOLDER, "m.keras", rank=-1))],
    ("predict", "--top"): [(["predict", FOLDER, "a.png", "--top", "0"], lambda: api.predict(FOLDER, ["a.png"], top=0))],
    ("predict", "--rank"): [(["predict", FOLDER, "a.png", "--rank", "x"],
                             lambda: api.predict(FOLDER, ["a.png"], rank="x"))],
}

# Positionals the command line requires one or more of: the API refuses none, naming the argument.
SOME = {("report", "PATH"): lambda: api.report([]), ("serve", "PATH"): lambda: api.serve([]),
        ("predict", "IMAGE"): lambda: api.predict(FOLDER, [])}

# (command, option) -> why no value is refused before the verb runs: the one check both go through is further on.
FREE = {
    ("run", "study"): "the study file, read by spec.load for both",
    ("validate", "study"): "the study file, read by spec.load for both",
    ("run", "--results-dir"): "any folder; folder.prepare refuses a foreign one for both",
    ("run", "--overwrite"): "a flag", ("run", "--verbose"): "a flag", ("confirm", "--verbose"): "a flag",
    ("report", "--verbose"): "a flag", ("export", "--verbose"): "a flag", ("predict", "--verbose"): "a flag",
    ("confirm", "PATH"): "folder.open_folder, for both", ("export", "PATH"): "folder.open_folder, for both",
    ("predict", "PATH"): "folder.open_folder, for both",
    ("export", "--to"): "trained.export checks the .keras name and the place, for both",
    ("report", "--output"): "api.report checks its folder, for both",
    ("report", "--sort"): "report.tables checks the column, for both",
    ("serve", "--host"): "any host name or address; serve.server warns beyond loopback, for both",
    ("list", "what"): "no API verb: describe_models and datasets are its two halves",
    ("list", "NAME"): "api.describe_models names an unknown builder, for both",
    ("data list", "--data-dir"): "any folder", ("data info", "--data-dir"): "any folder",
    ("data info", "name"): "data.load names an unknown dataset, for both",
    ("data download", "name"): "data.download names an unknown dataset, for both",
    ("data download", "--dest"): "any folder",
    **{("analyze", option): "api.analyze checks the table and the names against it, for both" for option in (
        "TRIALS.csv", "--objective", "--direction", "--hyperparameters", "--log", "--question", "--repeats",
        "--format")},
}


def _options(parser, prefix=""):
    """(command, option string or positional metavar) of every argument of every (sub)command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, f"{prefix} {name}".strip())
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)) and prefix:
            yield prefix, (action.option_strings[0] if action.option_strings else action.metavar or action.dest)


def test_every_option_of_every_command_has_a_case():
    walked = set(_options(cli._parser()))
    covered = set(BAD) | set(SOME) | set(FREE)
    assert walked - covered == set(), "options with no case here"
    assert covered - walked == set(), "cases of options the command line does not have"


def _cli_message(capsys, argv) -> str:
    """What `hpstudy ARGV` says after "error: ", with argparse's "argument X: " written as the API's "X: "."""
    try:
        code = cli.main(argv)
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    option, message = re.fullmatch(r"hpstudy(?: [a-z ]+)?: error: (?:argument (\S+): )?(.*)", line).groups()
    return f"{option}: {message}" if option else message


@pytest.mark.parametrize("key, argv, call", [(key, argv, call) for key, cases in BAD.items()
                                             for argv, call in cases], ids=lambda x: x if isinstance(x, str) else "")
def test_the_api_refuses_a_bad_value_as_the_command_does(capsys, key, argv, call):
    expected = _cli_message(capsys, argv)
    with pytest.raises(HpstudyError) as caught:
        call()
    assert str(caught.value) == expected


@pytest.mark.parametrize("key", sorted(SOME))
def test_the_api_refuses_no_paths_naming_the_argument(capsys, key):
    with pytest.raises(SystemExit):
        cli.main([*key[0].split(), *(["x"] if key[1] == "IMAGE" else [])])
    assert f"required: {key[1]}" in capsys.readouterr().err
    with pytest.raises(HpstudyError, match=f"^{key[1]}: expected one or more"):
        SOME[key]()


def test_one_path_given_as_text_is_one_path_not_its_characters(tmp_path):
    with pytest.raises(HpstudyError) as caught:
        api.report(str(tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere") in str(caught.value)


# Arguments whose default stands in for "left out" (a rank of 0, a port): None is refused in one line, before any
# file is opened, in the words the option uses for any other value it does not take.
NONE_REFUSED = [
    (lambda: api.run_workers(STUDY, None), "--workers: expected a positive integer, got 'None'"),
    (lambda: api.load_best(FOLDER, rank=None), "--rank: expected 0 (the best) or a positive integer, got 'None'"),
    (lambda: api.export(FOLDER, "m.keras", rank=None),
     "--rank: expected 0 (the best) or a positive integer, got 'None'"),
    (lambda: api.predict(FOLDER, ["a.png"], top=None), "--top: expected a positive integer, got 'None'"),
    (lambda: api.predict(FOLDER, ["a.png"], rank=None),
     "--rank: expected 0 (the best) or a positive integer, got 'None'"),
    (lambda: api.report([FOLDER], format=None),
     "--format: expected one of markdown, csv, json, html, latex, got 'None'"),
    (lambda: api.serve([FOLDER], port=None), "--port: expected a port in 0-65535, got 'None'"),
]


@pytest.mark.parametrize("call, message", NONE_REFUSED, ids=[m.split(":")[0] for _, m in NONE_REFUSED])
def test_an_argument_with_a_default_refuses_none_in_one_line(call, message):
    with pytest.raises(HpstudyError) as caught:
        call()
    assert str(caught.value) == message
