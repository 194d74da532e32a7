"""Creating, reopening and opening a results folder: a folder that holds another study, another layout, or
something that is not a results folder at all is refused with one line and the ways out."""
from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from hpstudy.errors import HpstudyError, ResultsError
from hpstudy.results import files
from hpstudy.results.layout import FORMAT, Layout
from hpstudy.study import spec as spec_module

# Keys a study may change without starting over: more trials extend the search; the limits apply from now on;
# the question and the seed repeats change what is reported and confirmed, not what was searched.
RESUMABLE_CHANGES = ("search.max_trials", "search.max_failed_trials", "search.keep_checkpoints", "search.confirm",
                     "question")
# Formats this version resumes: 2 differs from 3 only in how best.json counts epochs, which the readers convert.
RESUMABLE_FORMATS = (2, FORMAT)


def prepare(root: Path, study: spec_module.StudySpec, *, overwrite: bool = False) -> Layout:
    """Create or reopen `root` for `study`; refuse a folder that holds a different study."""
    layout = Layout(Path(root))
    if layout.root.exists() and any(layout.root.iterdir()):
        if not layout.spec.exists():
            raise ResultsError(f"{layout.root}: exists and is not an hpstudy results folder (no spec.yaml); "
                               "choose another --results-dir")
        if overwrite:
            shutil.rmtree(layout.root)
        else:
            _check_same_format(layout)
            _check_same_study(layout, study)
    layout.root.mkdir(parents=True, exist_ok=True)
    files.write_text(layout.spec, yaml.safe_dump(study.to_dict(), sort_keys=False))
    return layout


def results_format(layout: Layout) -> int:
    """The results format a folder was written in (env.json; 1 before it was recorded, this one before
    env.json exists: it is written right after `prepare`)."""
    env = files.read_json(layout.env)
    return env.get("results_format", 1) if isinstance(env, dict) else FORMAT


def _check_same_format(layout: Layout) -> None:
    """Refuse to resume a folder whose saved models another version of hpstudy laid out differently."""
    found = results_format(layout)
    if found not in RESUMABLE_FORMATS:
        raise ResultsError(f"{layout.root}: written by a version of hpstudy whose models are laid out differently "
                           f"(results format {found}, this version writes {FORMAT}); run with --overwrite to start "
                           "over, or use another --results-dir to keep it")


def _check_same_study(layout: Layout, study: spec_module.StudySpec) -> None:
    old = yaml.safe_load(layout.spec.read_text(encoding="utf-8")) or {}
    try:  # re-resolved, so keys added by a newer hpstudy compare as their defaults
        old = spec_module.from_dict(old, source=str(layout.spec)).to_dict()
    except HpstudyError:
        pass
    changed = [k for k in spec_module.changed_keys(old, study.to_dict())
               if not any(k == r or k.startswith(r + ".") for r in RESUMABLE_CHANGES)]
    if changed:
        raise ResultsError(
            f"{layout.root}: holds a study that differs from {study.source} in {', '.join(changed)}; "
            "run with --overwrite to start over, or give the study another name (or --results-dir) to keep both")


def open_folder(path: str | Path) -> Layout:
    """The layout of an existing results folder, or ResultsError saying what is missing."""
    layout = Layout(Path(path))
    if not layout.spec.exists():
        raise ResultsError(f"{path}: not an hpstudy results folder (no spec.yaml); run `hpstudy run STUDY` first")
    return layout


def study_of(layout: Layout) -> spec_module.StudySpec:
    """The resolved study stored in a results folder."""
    return spec_module.load(layout.spec)
