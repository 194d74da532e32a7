"""An exception inside a one-line message (text.exception_line): what every error message of hpstudy that quotes a
failure uses, so each says why in one line of bounded length."""
import errno
import re
from pathlib import Path

import hpstudy
from hpstudy.text import EXCEPTION_LINE_LIMIT, exception_line

PACKAGE = Path(hpstudy.__file__).parent
# The squashes exception_line replaces: a message's whitespace joined by hand, its first line cut short, or
# an OS error's strerror with the message as fallback.
HAND_SQUASHED = re.compile(r"""" "\.join\(str\((err|e|error)\)|\.splitlines\(\)\[0\]\[:|\.strerror or """)


def test_an_os_error_says_its_own_words():
    err = PermissionError(errno.EACCES, "Permission denied", "/data/x.npz")
    assert exception_line(err) == "Permission denied"
    assert exception_line(err, with_class=True) == "PermissionError: Permission denied"


def test_a_message_becomes_one_line_of_bounded_length():
    assert exception_line(ValueError("bad\nvalue\r\n\tthere  now")) == "bad value there now"
    long = exception_line(RuntimeError("x" * 1000))
    assert len(long) == EXCEPTION_LINE_LIMIT and long.endswith("...")
    assert len(exception_line(RuntimeError("y" * 1000), with_class=True)) == EXCEPTION_LINE_LIMIT


def test_without_a_message_the_class_names_it():
    assert exception_line(KeyError()) == "KeyError" and exception_line(EOFError(), with_class=True) == "EOFError"
    assert exception_line(OSError()) == "OSError"          # no strerror, no message
    assert exception_line(KeyError("weights")) == "'weights'"


def test_a_parser_message_is_squashed_alike():
    assert exception_line("expected ',' or ']'\n  in line 3") == "expected ',' or ']' in line 3"


def test_no_module_squashes_an_exception_by_hand():
    found = [f"{path.relative_to(PACKAGE)}:{n}" for path in PACKAGE.rglob("*.py") if path.name != "text.py"
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if HAND_SQUASHED.search(line)]
    assert found == []


def test_the_hand_squash_check_can_fail():
    assert HAND_SQUASHED.search("""reason = " ".join(str(err).split())[:160]""")
    assert HAND_SQUASHED.search("reason = str(error).splitlines()[0][:120]")
    assert HAND_SQUASHED.search('raise Refused(f"cannot be read ({err.strerror or err})")')
    assert not HAND_SQUASHED.search("reason = exception_line(err)")
