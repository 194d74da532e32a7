"""The second hostile corpus (tests/hostile_inputs/): every case is one line naming what is wrong, the right exit
code, no traceback, and never a hang (each case has a few seconds' alarm)."""
import signal

import pytest

from hpstudy import cli
from tests.hostile_inputs import Context, all_cases

CASES = all_cases()
SECONDS = 60        # far above any case's work (most are milliseconds): only a hang reaches it


def test_the_corpus_is_large():
    assert len(CASES) >= 60, len(CASES)


def _hang(signum, frame):
    raise TimeoutError(f"the case hung for {SECONDS} s")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input_is_one_line(case, tmp_path, capsys, request, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ctx = Context(tmp_path, lambda: request.getfixturevalue("finished_study"))
    argv = [str(a) for a in case.setup(ctx)]
    capsys.readouterr()
    previous = signal.signal(signal.SIGALRM, _hang)
    signal.alarm(SECONDS)
    try:
        rc = cli.main(argv)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("hpstudy: error: "), err
    assert lines[0].isprintable(), lines[0]        # no escape sequence, C1 or bidirectional control reaches a terminal
    assert rc == case.exit_code, (rc, err)
    assert case.fragment in lines[0], lines[0]
    if case.check is not None:
        case.check(ctx)
