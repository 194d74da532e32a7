"""One rule for everything hpstudy reads: each special-file kind (a named pipe, a socket, a link to /dev/zero, a
broken link, a link loop, a link out of the results folder, a folder where a file is) in each place a file or a
folder is read (records, histories, repeats, the trial folders, spec.yaml, the study file); files over the cap of
their kind; a .keras file whose config inflates past its cap; recorded hyperparameter values outside the study's
space. Each is one line naming the file, never a hang; nothing in the results folder, nor in the outside folder
its links point to, changes."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import stat
import zipfile
from pathlib import Path

from tests.hostile_inputs import case

_SNAPSHOTS: dict = {}
BEST, TRIAL, SECOND = "best.json", "tuner/trial_0001/trial.json", "tuner/trial_0000/trial.json"
REPEAT = "repeats/1/seed_1900003.json"          # the first repeat seed of search.seed 1


def _snapshot(root: Path) -> dict:
    """Every entry under `root`: a link's target, a special file's kind, a file's bytes (never opened unless it is
    a regular file, so a named pipe cannot hang the check)."""
    out = {}
    for path in sorted(root.rglob("*")) if root.is_dir() else []:
        facts = os.lstat(path)
        name = str(path.relative_to(root))
        if name in (".hpstudy.lock", "env.json"):       # held, or rewritten by a run's start
            continue
        if stat.S_ISLNK(facts.st_mode):
            out[name] = ("link", os.readlink(path))
        elif stat.S_ISREG(facts.st_mode):
            out[name] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
        else:
            out[name] = ("kind", stat.S_IFMT(facts.st_mode))
    return out


def _outside(ctx) -> Path:
    """A folder beside the results folder, outside it: what links point to, with a file a reader must not see."""
    folder = ctx.tmp / "outside"
    if not folder.exists():
        folder.mkdir()
        (folder / "secret.json").write_text('{"trial_id": "1", "secret": "not the results folder\'s"}\n')
        (folder / "sub").mkdir()
        (folder / "sub" / "seed_1900003.json").write_text('{"secret": 1}\n')
    return folder


def _keep(ctx, root: Path) -> None:
    _SNAPSHOTS[ctx.tmp] = [(folder, _snapshot(folder)) for folder in (root, _outside(ctx))]


def nothing_changed(ctx) -> None:
    """The results folder and the outside folder its links point to hold what they held before the command."""
    for folder, before in _SNAPSHOTS.pop(ctx.tmp):
        after = _snapshot(folder)
        assert after.keys() == before.keys(), sorted(set(after) ^ set(before))
        assert [n for n in before if before[n] != after[n]] == []


def _socket(path: Path) -> None:
    # A socket's path is limited to ~100 bytes: bound by its name alone, from its folder.
    here = os.getcwd()
    os.chdir(path.parent)
    try:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path.name)
        server.close()
    finally:
        os.chdir(here)


def _folder(path: Path) -> None:
    path.mkdir()
    (path / "inside.txt").write_text("a folder where a file was\n")


def _kinds(noun: str, linked: str, wrong: tuple) -> list:
    """Each kind of special entry where a `noun` ("file", "folder") is read: (name, make(path, ctx), the fragment
    of its line after the entry's name); `linked` is what the link out points to, `wrong` the other kind of entry."""
    return [
        ("fifo", lambda path, ctx: os.mkfifo(path), f"is a named pipe (FIFO), not a {noun}"),
        ("socket", lambda path, ctx: _socket(path), f"is a socket, not a {noun}"),
        ("dev_zero", lambda path, ctx: path.symlink_to("/dev/zero"),
         "is a symbolic link out of the results folder (to /dev/zero)"),
        ("broken_link", lambda path, ctx: path.symlink_to(path.parent / "nowhere"), "is a broken symbolic link"),
        ("link_loop", lambda path, ctx: path.symlink_to(path.name), "is a symbolic link loop"),
        ("link_out", lambda path, ctx: path.symlink_to(_outside(ctx) / linked),
         "is a symbolic link out of the results folder"),
        wrong,
    ]


KINDS = _kinds("file", "secret.json", ("folder", lambda path, ctx: _folder(path), "is a folder, not a file"))
FOLDER_KINDS = _kinds("folder", "sub", ("file", lambda path, ctx: path.write_text("a file where a folder was\n"),
                                        "is a file, not a folder"))


def _replaced(ctx, relative: str, make) -> Path:
    """The results copy with `relative` (a file or a folder, present or not) replaced by `make(path, ctx)`."""
    root = ctx.results()
    path = root / relative
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    _outside(ctx)
    make(path, ctx)
    _keep(ctx, root)
    return root


def _report(ctx, root):
    return ["report", root]


def _report_best(ctx, root):
    return ["report", root, "--best", "1", "--output", ctx.tmp / "report.md"]


def _confirm(ctx, root):
    return ["confirm", root, "--top", "1", "--seeds", "2"]


def _export_second(ctx, root):
    return ["export", root, "--rank", "1", "--to", ctx.tmp / "out.keras"]


# ---------------------------------------------------------------- each kind in each place a file is read
PLACES = [      # (the file, the command that reads it)
    (BEST, "report", _report), (BEST, "confirm", _confirm), (TRIAL, "report", _report), (TRIAL, "confirm", _confirm),
    (SECOND, "export", _export_second), ("trials/1/execution_0.json", "report", _report),
    ("trials/1/pruned.json", "report", _report), ("trials/1/history_0.csv", "report", _report_best),
    (REPEAT, "report", _report), (REPEAT, "confirm", _confirm),
]
for _file, _command, _argv in PLACES:
    for _kind, _make, _fragment in KINDS:
        case(f"reading_{_command}_{_file.replace('/', '_').replace('.', '_')}_{_kind}", f"{_file}: {_fragment}",
             check=nothing_changed)(
            lambda ctx, f=_file, m=_make, a=_argv: a(ctx, _replaced(ctx, f, m)))

# spec.yaml: the study a results folder holds (a broken link or a loop leaves the folder without one).
for _kind, _make, _fragment in KINDS:
    if _kind in ("broken_link", "link_loop"):
        _fragment = "not an hpstudy results folder (no spec.yaml)"
    elif _kind in ("fifo", "socket", "folder"):
        _fragment = f"spec.yaml: cannot read the study file: it {_fragment}"
    else:
        _fragment = f"spec.yaml: {_fragment}"
    case(f"reading_report_spec_yaml_{_kind}", _fragment, check=nothing_changed)(
        lambda ctx, m=_make: _report(ctx, _replaced(ctx, "spec.yaml", m)))

# ---------------------------------------------------------------- each kind in each place a folder is listed
FOLDERS = [("repeats", "report", _report), ("repeats/1", "report", _report), ("tuner/trial_0001", "report", _report),
           ("tuner/trial_0001", "confirm", _confirm), ("trials/1", "report", _report), ("tuner", "report", _report)]
for _folder_name, _command, _argv in FOLDERS:
    for _kind, _make, _fragment in FOLDER_KINDS:
        if _folder_name.startswith("repeats/") and _kind in ("fifo", "socket", "file"):
            continue        # beside the repeats' folders, a file is someone's notes: not read, not refused
        case(f"reading_{_command}_{_folder_name.replace('/', '_')}_folder_{_kind}", f"{_folder_name}: {_fragment}",
             check=nothing_changed)(
            lambda ctx, f=_folder_name, m=_make, a=_argv: a(ctx, _replaced(ctx, f, m)))


# ---------------------------------------------------------------- the study file (validate, run)
def _study_kind(make):
    def setup(ctx):
        path = ctx.tmp / "study.yaml"
        _outside(ctx)
        make(path, ctx)
        _keep(ctx, ctx.tmp / "outside")
        return path
    return setup


_STUDY_KINDS = [(name, make, fragment) for name, make, fragment in KINDS if name != "link_out"] + [
    ("too_large", lambda path, ctx: path.write_text("name: big\n" + "#" * (2 << 20) + "\n"),
     "is too large (2 MiB; the cap for a study file is 1 MiB)")]
for _command in ("validate", "run"):
    for _kind, _make, _fragment in _STUDY_KINDS:
        _fragment = "is a character device, not a file" if _kind == "dev_zero" else _fragment
        case(f"reading_{_command}_study_file_{_kind}", f"study.yaml: cannot read the study file: it {_fragment}",
             check=nothing_changed)(
            lambda ctx, c=_command, m=_make: [c, _study_kind(m)(ctx)]
            + (["--results-dir", ctx.tmp / "r"] if c == "run" else []))


# ---------------------------------------------------------------- size caps
def _sparse(size: int):
    def make(path: Path, ctx) -> None:
        with open(path, "wb") as out:       # a hole: no disk used, and a reader that reads it all takes seconds
            out.truncate(size)
    return make


for _file, _command, _argv, _size, _fragment in [
    (BEST, "report", _report, 40 << 20, "is too large (40 MiB; the cap for a JSON record is 32 MiB)"),
    (TRIAL, "report", _report, 40 << 20, "is too large (40 MiB; the cap for a JSON record is 32 MiB)"),
    ("trials/1/execution_0.json", "report", _report, 64 << 20, "is too large (64 MiB; the cap for a JSON record"),
    ("trials/1/history_0.csv", "report", _report_best, 64 << 20,
     "is too large (64 MiB; the cap for a history is 16 MiB)"),
    (REPEAT, "report", _report, 40 << 20, "is too large (40 MiB; the cap for a JSON record is 32 MiB)"),
]:
    case(f"reading_{_command}_{_file.replace('/', '_').replace('.', '_')}_too_large", f"{_file}: {_fragment}",
         check=nothing_changed)(lambda ctx, f=_file, a=_argv, s=_size: a(ctx, _replaced(ctx, f, _sparse(s))))


def _inflating_config(size: int):
    """A .keras file whose config.json inflates to `size` bytes (zeros: a few kB compressed)."""
    def rewrite(path: Path, ctx) -> None:
        source = ctx.results() / "best.keras.orig"
        with zipfile.ZipFile(source) as original:
            entries = {n: original.read(n) for n in original.namelist()}
        entries["config.json"] = b" " * size
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
            for name, data in entries.items():
                out.writestr(name, data)
    return rewrite


def _bomb(ctx, size: int) -> Path:
    root = ctx.results()
    shutil.copyfile(root / "best.keras", root / "best.keras.orig")
    root = _replaced(ctx, "best.keras", _inflating_config(size))
    return root


_BOMB = "best.keras: refused: its JSON member 'config.json' inflates to 64 MiB (the cap for a JSON member of a " \
        ".keras file is 16 MiB)"
case("reading_export_best_keras_config_bomb", _BOMB, check=nothing_changed)(
    lambda ctx: ["export", _bomb(ctx, 64 << 20), "--to", ctx.tmp / "out.keras"])


def _image(ctx) -> Path:
    from PIL import Image
    path = ctx.tmp / "digit.png"
    Image.new("RGB", (8, 8), (200, 10, 10)).save(path)
    return path


case("reading_predict_best_keras_config_bomb", _BOMB, check=nothing_changed)(
    lambda ctx: ["predict", _bomb(ctx, 64 << 20), _image(ctx)])
for _kind, _make, _fragment in KINDS:
    if _kind in ("broken_link", "link_loop", "link_out", "dev_zero"):
        _fragment = f"corrupt or unreadable, not a .keras model file ({_fragment.removeprefix('is ')}"
    else:
        _fragment = f"corrupt or unreadable, not a .keras model file ({_fragment.removeprefix('is ').split(',')[0]})"
    case(f"reading_predict_best_keras_{_kind}", f"best.keras: {_fragment}", check=nothing_changed)(
        lambda ctx, m=_make: ["predict", _replaced(ctx, "best.keras", m), _image(ctx)])


# ---------------------------------------------------------------- recorded values outside the study's space
def _values(**values):
    def edit(path: Path, ctx) -> None:
        data = json.loads((path.parent / "trial.json.orig").read_text())
        data["hyperparameters"]["values"].update(values)
        path.write_text(json.dumps(data))
    return edit


def _recorded(ctx, relative: str, make) -> Path:
    root = ctx.results()
    shutil.copyfile(root / relative, root / relative.replace("trial.json", "trial.json.orig"))
    return _replaced(ctx, relative, make)


_SPACE = "outside the study's space (one of 0.0, 0.5); no model is rebuilt from it"
for _name, _value in [("negative", -1.0), ("five", 5.0), ("string", "0.5"), ("between", 0.25), ("null", None),
                      ("true", True)]:
    case(f"reading_confirm_recorded_dropout_{_name}", f"{TRIAL}: records model.dropout = {_value!r}, {_SPACE}",
         check=nothing_changed)(
        lambda ctx, v=_value: _confirm(ctx, _recorded(ctx, TRIAL, _values(**{"model.dropout": v}))))
    case(f"reading_export_rank_recorded_dropout_{_name}", f"{SECOND}: records model.dropout = {_value!r}, {_SPACE}",
         check=nothing_changed)(
        lambda ctx, v=_value: _export_second(ctx, _recorded(ctx, SECOND, _values(**{"model.dropout": v}))))
