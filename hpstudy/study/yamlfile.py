"""Reading study YAML without PyYAML's traps: YAML 1.2 scalars and no duplicate keys."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from hpstudy import files
from hpstudy.errors import SpecError
from hpstudy.text import exception_line


class _StudyLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 scalars: `1e-4` is a float, `no`/`on` stay strings; no duplicate keys."""

    def construct_object(self, node, deep=False):
        # PyYAML's scalar constructors fail with plain Python errors on values they cannot read (`!!float fast`,
        # `!!bool maybe`, an integer of 5,000 digits): make them YAML errors that point at the value.
        """Build a mapping, refusing a key that appears twice."""
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, LookupError, AttributeError, OverflowError) as err:
            kind = node.tag.rsplit(":", 1)[-1]
            shown = node.value if isinstance(node.value, str) else ""
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            reason = f" ({exception_line(str(err).split(';')[0])})" if isinstance(err, ValueError) else ""
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {shown!r} as a YAML {kind}{reason}", node.start_mark) from None


_BOOL, _FLOAT, _INT = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:float", "tag:yaml.org,2002:int"
# YAML 1.1's other implicit types are not YAML 1.2's either: `2024-13-45` (timestamp), `=` (value) and `<<`
# (merge) stay plain strings instead of failing as dates, values or merges.
_YAML11_ONLY = ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value", "tag:yaml.org,2002:merge")
_StudyLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _FLOAT, _INT, *_YAML11_ONLY)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StudyLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_StudyLoader.add_implicit_resolver(_FLOAT, re.compile(
    r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[0-9][0-9_]*[eE][-+]?[0-9]+|\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
    r"|\.(?:inf|Inf|INF))$|^\.(?:nan|NaN|NAN)$"), list("-+0123456789."))
# Decimal integers only: YAML 1.1 reads `010` as 8 and `1:30` as 90.
_StudyLoader.add_implicit_resolver(_INT, re.compile(r"^[-+]?[0-9][0-9_]*$"), list("-+0123456789"))
_StudyLoader.add_constructor(_INT, lambda loader, node: int(loader.construct_scalar(node).replace("_", ""), 10))


def _mapping_without_duplicates(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise yaml.constructor.ConstructorError(None, None, "keys must be plain names", key_node.start_mark)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_StudyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                             lambda loader, node: _mapping_without_duplicates(loader, node, deep=True))


class _StudyDumper(yaml.SafeDumper):
    """SafeDumper that quotes every string either YAML 1.1 or the study loader would read as something else
    (`1e5` is a float to the study loader only), so that what `dump` writes `parse` reads back the same."""


_StudyDumper.yaml_implicit_resolvers = {
    first: [*resolvers, *_StudyLoader.yaml_implicit_resolvers.get(first, [])]
    for first, resolvers in yaml.SafeDumper.yaml_implicit_resolvers.items()
}


def dump(data: Any) -> str:
    """`data` (plain mappings, lists and scalars) as YAML text that `parse` reads back as it is: a results
    folder's spec.yaml."""
    return yaml.dump(data, Dumper=_StudyDumper, sort_keys=False)


def parse(text: str) -> Any:
    """The YAML document in ``text``; raises yaml.YAMLError (with a mark where it went wrong)."""
    return yaml.load(text, Loader=_StudyLoader)  # noqa: S506 - a SafeLoader subclass


def read(path: Path) -> str:
    """The text of study file `path`; a SpecError naming it when it is missing, not a regular file (a named pipe or
    a link to /dev/zero is refused before it is opened, so nothing hangs), over the cap of a study file, or not
    UTF-8. Links are followed: a study file may live anywhere."""
    try:
        data = files.read_bytes(path, "study file", inside=False)
        if data is None:
            raise SpecError(f"{path}: no such study file")
        return data.decode("utf-8")
    except files.Refused as err:
        raise SpecError(f"{path}: cannot read the study file: it {err.reason}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"{path}: cannot read the study file ({exception_line(err, with_class=True)})") from None


def opening_comment(path: str | Path) -> str:
    """The comment a study file opens with (its `#` lines before the first other line), without the `#`s; ""
    when it has none or cannot be read. A results folder's spec.yaml keeps it: the report's question."""
    lines: list[str] = []
    try:
        for line in read(Path(path)).splitlines():     # no FIFO or device is read, nor past the cap
            if not line.lstrip().startswith("#") or len(lines) >= 40:
                break
            lines.append(line.strip().lstrip("#").strip())
    except SpecError:
        return ""
    return "\n".join(line[:300] for line in lines).strip()
