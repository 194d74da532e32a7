"""Creating, reopening and opening a results folder: a folder that holds another study, another layout, or
something that is not a results folder at all is refused with one line and the ways out."""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import yaml

from hpstudy import files
from hpstudy.errors import HpstudyError, ResultsError
from hpstudy.results.layout import FORMAT, Layout
from hpstudy.results.lock import FolderLock
from hpstudy.study import spec as spec_module, yamlfile
from hpstudy.text import exception_line

# Keys a study may change without starting over: more trials extend the search; the limits apply from now on;
# the question and the seed repeats change what is reported and confirmed, not what was searched.
RESUMABLE_CHANGES = ("search.max_trials", "search.max_failed_trials", "search.keep_checkpoints", "search.confirm",
                     "search.until", "question")
# Formats this version resumes: 2 differs from 3 only in how best.json counts epochs, which the readers convert.
RESUMABLE_FORMATS = (2, FORMAT)


def prepare(root: Path, study: spec_module.StudySpec, *, overwrite: bool = False) -> Layout:
    """Create or reopen `root` for `study`; refuse a folder that holds a different study. With `overwrite`,
    first delete what hpstudy wrote there, once every entry is proven its own (see `_clear`)."""
    layout = Layout(Path(root))
    _check_is_ours(layout)
    if layout.root.exists() and any(p.name != layout.lock.name for p in layout.root.iterdir()):
        if overwrite:
            _clear(layout, study)
        else:
            _check_same_format(layout)
            _check_same_study(layout, study)
    layout.root.mkdir(parents=True, exist_ok=True)
    if not layout.marker.exists():
        files.write_json(layout.marker, {"made_by": "hpstudy", "study": study.name})
    # The study file's opening comment (what it asks) travels as spec.yaml's own: the report opens with it.
    comment = yamlfile.opening_comment(study.source) or (
        "" if layout.spec.is_symlink() else yamlfile.opening_comment(layout.spec))
    header = "".join(f"# {line}".rstrip() + "\n" for line in comment.splitlines())
    files.write_text(layout.spec, header + yamlfile.dump(study.to_dict()))
    return layout


@contextlib.contextmanager
def locked(root: Path, *, lock: bool = True):
    """Hold the lock of results folder `root` while the block runs (`lock=False`: a distributed study's worker,
    which shares its chief's folder): a second run on the same folder is refused at once, naming the process
    that holds it. A folder made here for the lock and left empty (the run stopped before `prepare`) goes again."""
    layout = Layout(Path(root))
    _check_is_ours(layout)                       # before the lock file is written into it
    if not lock:
        yield layout
        return
    made = not layout.root.exists()
    try:
        layout.root.mkdir(parents=True, exist_ok=True)
    except OSError as err:          # --results-dir is a file, or read-only
        raise ResultsError(f"{layout.root}: cannot make the results folder ({exception_line(err)}); choose "
                           "another --results-dir") from None
    try:
        with FolderLock(layout):
            yield layout
    finally:
        if made and [p.name for p in layout.root.iterdir()] == [layout.lock.name]:
            layout.lock.unlink()
            layout.root.rmdir()


def _check_is_ours(layout: Layout) -> None:
    """Refuse a folder that exists, holds anything, and is not an hpstudy results folder."""
    root = layout.root
    if root.exists() and not root.is_dir():
        raise ResultsError(f"{root}: exists and is not a folder; choose another --results-dir")
    held = root.is_dir() and any(p.name != layout.lock.name for p in root.iterdir())
    env = files.read_json(layout.env)       # an older hpstudy's folder, whose spec.yaml this one may not read
    older = layout.spec.is_file() and isinstance(env, dict) and "hpstudy" in env
    if held and not (layout.marker.is_file() or older or _holds_a_study(layout)):
        raise ResultsError(f"{root}: exists and is not an hpstudy results folder (no {layout.marker.name} marker, "
                           "and no spec.yaml of a study); nothing was changed; choose another --results-dir")


def _clear(layout: Layout, study: spec_module.StudySpec) -> None:
    """--overwrite: delete everything hpstudy wrote in the folder (the lock stays), but only once the folder is
    proven its own: its marker, or (a folder written before the marker) a spec.yaml of this very study; and
    nothing inside, at any depth, that hpstudy does not write (`Layout.first_foreign`). Symbolic links with
    hpstudy's names are deleted, never followed."""
    root = layout.root
    refuse = f"{root}: --overwrite refused, so nothing was deleted"
    if root.is_symlink():
        raise ResultsError(f"{refuse}: the folder is a symbolic link (to {os.path.realpath(root)}); give the real "
                           "folder as --results-dir, or delete it yourself")
    if Path.cwd().resolve().is_relative_to(root.resolve()):
        raise ResultsError(f"{refuse}: it holds the current directory; run from outside it")
    foreign = layout.first_foreign()
    if foreign is not None:
        raise ResultsError(f"{refuse}: it holds {str(foreign)!r}, which hpstudy did not write; move it away or use "
                           "another --results-dir")
    if not (layout.marker.is_file() or _holds_a_study(layout, study.name)):
        raise ResultsError(f"{refuse}: nothing proves hpstudy wrote it (no {layout.marker.name} marker, and its "
                           f"spec.yaml is not study {study.name!r}); delete it yourself if it is yours")
    for entry in root.iterdir():
        if entry.name == layout.lock.name:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)        # deletes links inside it, never what they point to
        else:
            entry.unlink()


def _holds_a_study(layout: Layout, name: str | None = None) -> bool:
    """Whether the folder's spec.yaml is a study file (named `name`, when given): what a results folder older than
    the marker has instead."""
    if not layout.spec.is_file() or layout.spec.is_symlink():
        return False
    try:
        found = study_of(layout)
    except HpstudyError:
        return False
    return name is None or found.name == name


def results_format(layout: Layout) -> int:
    """The results format a folder was written in (env.json; 1 before it was recorded, this one before
    env.json exists: it is written right after `prepare`)."""
    env = files.read_record(layout.env, dict, {"results_format": int}, root=layout.root)
    return env.get("results_format", 1) if env is not None else FORMAT


def _check_same_format(layout: Layout) -> None:
    """Refuse to resume a folder whose saved models another version of hpstudy laid out differently."""
    found = results_format(layout)
    if found not in RESUMABLE_FORMATS:
        raise ResultsError(f"{layout.root}: written by a version of hpstudy whose models are laid out differently "
                           f"(results format {found}, this version writes {FORMAT}); run with --overwrite to start "
                           "over, or use another --results-dir to keep it")


def _saved_study(layout: Layout) -> dict:
    """The study a results folder holds (its spec.yaml) as a mapping, read as a study file is (`study.yamlfile`),
    or a ResultsError naming the file, nothing changed, and the ways out."""
    try:
        old = yamlfile.parse((files.read_bytes(layout.spec, "study file", root=layout.root) or b"").decode("utf-8"))
        what = None if isinstance(old, dict) else f"a YAML {type(old).__name__}, not the mapping of a study"
    except files.Refused as err:
        what = err.reason.removeprefix("is ")
    except OSError as err:
        what = f"cannot be read: {exception_line(err)}"
    except UnicodeDecodeError:
        what = "not UTF-8 text"
    except (yaml.YAMLError, RecursionError) as err:
        what = f"not valid YAML: {exception_line(getattr(err, 'problem', None) or err)}"
    if what:
        raise ResultsError(f"{layout.spec}: corrupt ({what}), so the study this folder holds is unknown; nothing was "
                           "changed; restore it, or run with --overwrite to start over, or use another --results-dir")
    return old


def _check_same_study(layout: Layout, study: spec_module.StudySpec) -> None:
    old = _saved_study(layout)
    try:  # re-resolved, so keys added by a newer hpstudy compare as their defaults
        old = spec_module.from_dict(old, source=str(layout.spec)).to_dict()
    except HpstudyError:
        pass
    # A design's plan is made from its question: changing the question would unbalance the trials already run.
    resumable = [r for r in RESUMABLE_CHANGES if not (r == "question" and study.search.tuner == "design")]
    changed = [k for k in changed_keys(old, study.to_dict())
               if not any(k == r or k.startswith(r + ".") for r in resumable)]
    if changed:
        raise ResultsError(
            f"{layout.root}: holds a study that differs from {study.source} in {', '.join(changed)}; "
            "run with --overwrite to start over, or give the study another name (or --results-dir) to keep both")


def changed_keys(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two resolved study dicts."""
    keys = []
    for key in sorted(set(old) | set(new), key=str):
        path = f"{prefix}{key}"
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict) and "tune" not in a and "tune" not in b:
            keys += changed_keys(a, b, path + ".")
        elif a != b:
            keys.append(path)
    return keys


def open_folder(path: str | Path) -> Layout:
    """The layout of an existing results folder, or ResultsError saying what is missing."""
    layout = Layout(Path(path))
    if not layout.spec.exists():
        raise ResultsError(f"{path}: not an hpstudy results folder (no spec.yaml); run `hpstudy run STUDY` first")
    return layout


def study_of(layout: Layout) -> spec_module.StudySpec:
    """The resolved study stored in a results folder (its spec.yaml, never read through a link out of it)."""
    if os.path.lexists(layout.spec):
        try:
            files.resolve_inside(layout.spec, layout.root)
        except files.Refused as err:
            raise files.damaged(layout.spec, err.reason) from None
    return spec_module.load(layout.spec)


def stamp(layout: Layout) -> tuple:
    """What changes whenever a run or `hpstudy confirm` records something a report shows: the identity, size and
    time of spec.yaml, trials.csv (rewritten at each trial's end), best.json, repeats.csv and importance.json. Five
    file lookups, whatever the number of trials: to tell whether a report built earlier is still the folder's."""
    out: list[tuple[int, int, int] | None] = []
    for path in (layout.spec, layout.table, layout.best, layout.repeats_table, layout.importance):
        try:
            facts = os.stat(path)
            out.append((facts.st_ino, facts.st_size, facts.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)
