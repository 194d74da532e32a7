"""The rules for the values of the command line's options, in one place: `hpstudy`'s argument parser (cli) and the
Python API (api) both check with them, so a value one refuses the other refuses too, in the same words.

Each check takes the value as typed (text, from the parser) or as passed (a Python value), returns it converted,
and otherwise raises OptionError naming the option. None (an option left out) passes every check. Nothing heavy
is imported here.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, TypeVar

from hpstudy.errors import HpstudyError

FORMATS = ("markdown", "csv", "json", "html", "latex")      # hpstudy report --format
ROLES = ("chief", "worker")                                   # hpstudy run --role
LABEL_MODES = ("fine", "coarse")                              # hpstudy data info --label-mode
POSITIVE, RANK, PORT = "a positive integer", "0 (the best) or a positive integer", "a port in 0-65535"
_T = TypeVar("_T")


class OptionError(HpstudyError):
    """An option's value is not one the option takes: the message names the option and what it takes."""


# An OptionError reads "--top: expected a positive integer, got '-1'": the value is quoted as its text either way,
# so the command and the API say exactly the same. As an argparse type (`parser_type`), argparse prints it as
# "argument --top: expected a positive integer, got '-1'".
def _integer(value, option: str, smallest: int, expected: str):
    """`value` as an int of at least `smallest`; an OptionError saying `expected` otherwise."""
    if value is None:
        return None
    number = None
    if isinstance(value, int) and not isinstance(value, bool):      # True is no count of anything
        number = value
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        number = int(value)
    if number is None or number < smallest:
        raise OptionError(f"{option}: expected {expected}, got {str(value)!r}")
    return number


def positive(value, option: str) -> int | None:
    """A positive integer (--max-trials, --epochs, --top, --workers, the timeouts)."""
    return _integer(value, option, 1, POSITIVE)


def seeds(value, option: str = "--seeds") -> int | None:
    """A number of seeds: at least 2, since one seed measures no spread."""
    return _integer(value, option, 2, "at least 2 seeds (one measures no spread)")


def rank(value, option: str = "--rank") -> int | None:
    """A rank among a study's completed trials: 0 is the best."""
    return _integer(value, option, 0, RANK)


def count(value, option: str) -> int | None:
    """0 or more (--best: how many models to evaluate)."""
    return _integer(value, option, 0, "0 or a positive integer")


def port(value, option: str = "--port") -> int | None:
    """A TCP port, 0 for any free one."""
    number = _integer(value, option, 0, PORT)
    if number is not None and number > 65535:
        raise OptionError(f"{option}: expected {PORT}, got {str(value)!r}")
    return number


def image_size(value, option: str = "--image-size") -> int | None:
    """An image size as data.image_size takes it in a study file."""
    if value is None:
        return None
    from hpstudy.study import spec  # no Keras: the study file's own rule for data.image_size
    try:
        return spec.check_as_study_field(spec.DataSpec, "image_size", value, where=option)
    except HpstudyError as err:
        reason = str(err).rsplit(", got ", 1)[0]
        raise OptionError(f"{option}: {reason}, got {str(value)!r}") from None


def choice(value, option: str, choices: tuple[str, ...]) -> str | None:
    """One of `choices`, exactly."""
    if value is None:
        return None
    if not isinstance(value, str) or value not in choices:
        raise OptionError(f"{option}: expected one of {', '.join(choices)}, got {str(value)!r}")
    return value


def some(values, option: str, what: str) -> list:
    """At least one of the PATH or IMAGE arguments, as a list: a single path stands for itself (not for its
    characters, which iterating a string would give)."""
    if isinstance(values, (str, Path)):
        values = [values]
    values = list(values) if values is not None else []
    if not values or not all(isinstance(v, (str, Path)) for v in values):
        raise OptionError(f"{option}: expected one or more {what} (file names), got {values!r}")
    return values


def required(checked: _T | None, option: str, expected: str) -> _T:
    """A checked value of an API argument that has a default instead of None (a rank, a port): None there is
    refused as any other value the option does not take."""
    if checked is None:
        raise OptionError(f"{option}: expected {expected}, got 'None'")
    return checked


def parser_type(check: Callable, option: str, *args) -> Callable[[str], object]:
    """`check` as an argparse type for `option`: its OptionError becomes argparse's error, whose message argparse
    prefixes with "argument <option>: ", so the words after it are the API's."""
    def parse(text: str):
        try:
            return check(text, option, *args)
        except OptionError as err:
            raise argparse.ArgumentTypeError(str(err).removeprefix(f"{option}: ")) from None
    parse.__name__ = check.__name__      # what argparse names when it cannot call it
    return parse


def metavar(choices: tuple[str, ...]) -> str:
    """How --help shows an option that takes one of `choices` (as argparse's own choices= would)."""
    return "{" + ",".join(choices) + "}"
