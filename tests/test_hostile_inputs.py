"""The second hostile corpus (tests/hostile_inputs/): every case is one line naming what is wrong, the right exit
code, no traceback, and never a hang (each case has a few seconds' alarm)."""
import pytest

from hpstudy import cli
from tests.helpers import no_hang, one_error_line
from tests.hostile_inputs import Context, all_cases

CASES = all_cases()
SECONDS = 60        # far above any case's work (most are milliseconds): only a hang reaches it


def test_the_corpus_is_large():
    assert len(CASES) >= 60, len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input_is_one_line(case, tmp_path, capsys, request, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ctx = Context(tmp_path, lambda: request.getfixturevalue("finished_study"))
    argv = [str(a) for a in case.setup(ctx)]
    capsys.readouterr()
    with no_hang(SECONDS):
        rc = cli.main(argv)
    line = one_error_line(capsys, case.fragment)
    assert rc == case.exit_code, (rc, line)
    if case.check is not None:
        case.check(ctx)
