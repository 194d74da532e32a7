"""Results folders: every file hpstudy reads from one made missing, empty, truncated, wrong-typed, non-UTF-8, a
folder, a symbolic link to something foreign, or a foreign file; read by report, confirm, export, predict and
the resume of `hpstudy run`. Each is one line naming the file, and nothing in the folder is changed."""
from __future__ import annotations

import functools
import json
import os
import shutil
import zipfile
from pathlib import Path

from tests.hostile_inputs import case

_SNAPSHOTS: dict = {}
# Rewritten by every run before its search starts (the run's versions and start time), or held by it.
_REWRITTEN = {"env.json", ".hpstudy.lock"}


def _snapshot(root: Path) -> dict:
    out = {}
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        if name in _REWRITTEN:
            continue
        if path.is_symlink():
            out[name] = ("link", os.readlink(path))
        elif path.is_dir():
            out[name] = ("folder",)
        else:
            out[name] = ("file", path.read_bytes())
    return out


def _keep(ctx, root: Path) -> None:
    _SNAPSHOTS[ctx.tmp] = (root, _snapshot(root))


def unchanged(ctx, ignore=frozenset()) -> None:
    """What the case left in the results folder is still there, byte for byte (the lock and env.json aside, and
    the files in `ignore`)."""
    root, before = _SNAPSHOTS.pop(ctx.tmp)
    after = _snapshot(root)
    assert after.keys() == before.keys(), sorted(set(after) ^ set(before))
    changed = [name for name in before if before[name] != after[name] and name not in ignore]
    assert not changed, changed


# For a resume that got as far as its search: keras-tuner saves its state again then (the same trials, in its own
# key order).
unchanged_but_tuner_state = functools.partial(unchanged, ignore={"tuner/oracle.json", "tuner/tuner0.json"})


def _damage(ctx, relative: str, content) -> Path:
    """The results copy with file `relative` replaced by `content` (bytes, text, JSON-able data, or a callable
    given the path), its state kept for `unchanged`."""
    root = ctx.results()
    path = root / relative
    if callable(content):
        content(path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_text(json.dumps(content), encoding="utf-8")
    _keep(ctx, root)
    return root


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _folder(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "inside.txt").write_text("a folder where a file was\n")


def _edit(**changes):
    def edit(path: Path) -> None:
        data = json.loads(path.read_text())
        data.update(changes)
        path.write_text(json.dumps(data))
    return edit


def _foreign_link(path: Path) -> None:
    foreign = path.parent.parent / f"foreign_{path.name}.txt"
    foreign.write_text("root:x:0:0:root:/root:/bin/bash\n")
    path.unlink() if path.is_file() else shutil.rmtree(path)
    path.symlink_to(foreign)


BEST = "best.json"
TRIAL = "tuner/trial_0001/trial.json"           # the best trial's record (rank 0); trial_0000 is rank 1
EXECUTION = "trials/1/execution_0.json"
HISTORY = "trials/1/history_0.csv"
ORACLE = "tuner/oracle.json"
TUNER = "tuner/tuner0.json"
CHECKPOINT_BEST = "tuner/trial_0001/checkpoint.weights.h5"
CHECKPOINT_SECOND = "tuner/trial_0000/checkpoint.weights.h5"


def _report(ctx, relative, content):
    return ["report", _damage(ctx, relative, content)]


def _resume(ctx, relative, content):
    _damage(ctx, relative, content)
    return ["run", ctx.study_file(), "--results-dir", ctx.tmp / "results"]


def _image(ctx) -> Path:
    from PIL import Image
    path = ctx.tmp / "digit.png"
    Image.new("RGB", (8, 8), (200, 10, 10)).save(path)
    return path


# ---------------------------------------------------------------- best.json (report)
for _name, _content, _fragment in [
    ("list", [1], "is corrupt (expected an object, found a list)"),
    ("null", None, "is corrupt (expected an object, found null)"),
    ("hyperparameters_list", _edit(hyperparameters=[0.5]), "is corrupt ('hyperparameters' is a list"),
    ("score_string", _edit(score="high"), "is corrupt ('score' is a string"),
    ("trial_id_number", _edit(trial_id=1), "is corrupt ('trial_id' is a number"),
    ("truncated", _truncated, "is corrupt (not valid JSON"),
    ("empty", b"", "is empty"),
    ("not_utf8", b'{"trial_id": "\xff\xfe"}', "is corrupt (not UTF-8"),
    ("folder", _folder, "is a folder"),
    ("link_to_a_foreign_file", _foreign_link, "is a symbolic link out of the results folder"),   # never read
]:
    case(f"results_report_best_json_{_name}", f"{BEST}: {_fragment}", check=unchanged)(
        lambda ctx, c=_content: _report(ctx, BEST, c))

# ---------------------------------------------------------------- keras-tuner's trial.json (report)
for _name, _content, _fragment in [
    ("list", [{"trial_id": "0001"}], "is corrupt (expected an object, found a list)"),
    ("hyperparameters_list", _edit(hyperparameters=[]), "is corrupt ('hyperparameters' is a list"),
    ("values_list", _edit(hyperparameters={"space": [], "values": [0.5]}), "is corrupt ('hyperparameters.values'"),
    ("score_string", _edit(score="0.15"), "is corrupt ('score' is a string"),
    ("status_number", _edit(status=3), "is corrupt ('status' is a number"),
    ("truncated", _truncated, "is corrupt (not valid JSON"),
    ("not_utf8", b"\xff\xfe\x00{", "is corrupt (not UTF-8"),
    ("folder", _folder, "is a folder"),
    ("no_trial_id", lambda path: path.write_text(json.dumps({k: v for k, v in json.loads(path.read_text()).items()
                                                              if k != "trial_id"})), "is corrupt (no trial number"),
    ("trial_id_null", _edit(trial_id=None), "is corrupt ('trial_id' is null, expected"),
    ("observations_string", _edit(metrics={"metrics": {"val_accuracy": {"observations": "many"}}}),
     "is corrupt (unexpected content"),
]:
    case(f"results_report_trial_json_{_name}", f"{TRIAL}: {_fragment}", check=unchanged)(
        lambda ctx, c=_content: _report(ctx, TRIAL, c))

# ---------------------------------------------------------------- hpstudy's per-trial records (report)
for _name, _content in [("list", [1]), ("seconds_string", _edit(seconds="1.5 s")), ("truncated", _truncated),
                        ("folder", _folder),
                        ("last_not_numbers", _edit(last={"loss": "low"}))]:
    case(f"results_report_execution_json_{_name}", f"{EXECUTION}: is ", check=unchanged)(
        lambda ctx, c=_content: _report(ctx, EXECUTION, c))


def _repeat_file(ctx, content) -> Path:
    root = ctx.results()
    path = root / "repeats" / "1" / "seed_1900003.json"          # the first repeat seed of search.seed 1
    path.parent.mkdir(parents=True)
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(json.dumps(content))
    _keep(ctx, root)
    return root


@case("results_report_repeat_truncated", "repeats/1/seed_1900003.json: is corrupt", check=unchanged)
def _(ctx):
    return ["report", _repeat_file(ctx, b'{"trial_id": "1", "seed": 19')]


@case("results_report_repeat_score_string", "'score' is a string", check=unchanged)
def _(ctx):
    return ["report", _repeat_file(ctx, {"trial_id": "1", "seed": 1900003, "status": "COMPLETED", "score": "x"})]


@case("results_confirm_repeat_list", "repeats/1/seed_1900003.json: is corrupt", check=unchanged)
def _(ctx):
    return ["confirm", _repeat_file(ctx, [1, 2]), "--top", "1", "--seeds", "2"]


@case("results_confirm_best_json_list", f"{BEST}: is corrupt", check=unchanged)
def _(ctx):
    return ["confirm", _damage(ctx, BEST, [1]), "--top", "1", "--seeds", "2"]


@case("results_confirm_hyperparameters_unknown_kind", f"{TRIAL}: is corrupt (its hyperparameters", check=unchanged)
def _(ctx):
    broken = _edit(hyperparameters={"space": [{"class_name": "NoSuchKind", "config": {}}], "values": {}})
    return ["confirm", _damage(ctx, TRIAL, broken), "--top", "1", "--seeds", "2"]


@case("results_report_best_history_garbage", f"{HISTORY}: is corrupt", check=unchanged)
def _(ctx):
    return ["report", _damage(ctx, HISTORY, b"\x89PNG\r\n\x1a\n\x00\x00garbage"), "--best", "1",
            "--output", ctx.tmp / "report.md"]


# ---------------------------------------------------------------- spec.yaml and keras-tuner's state (resume)
for _name, _content in [("invalid_yaml", "name: tiny\ndata: {dataset: digits\n"), ("not_utf8", b"name: \xff\xfe\n"),
                        ("a_list", "- 1\n- 2\n"), ("folder", _folder)]:
    case(f"results_resume_spec_yaml_{_name}", "spec.yaml: corrupt", check=unchanged)(
        lambda ctx, c=_content: _resume(ctx, "spec.yaml", c))

for _file, _name, _content, _fragment in [
    (ORACLE, "truncated", _truncated, "is corrupt (not valid JSON"),
    (ORACLE, "list", [], "is corrupt (expected an object, found a list)"),
    (ORACLE, "missing_keys", {"seed": 2}, "is corrupt (keras-tuner cannot reload it"),
    (ORACLE, "not_utf8", b"\xff{}", "is corrupt (not UTF-8"),
    (TUNER, "truncated", _truncated, "is corrupt (not valid JSON"),
    (TUNER, "folder", _folder, "is a folder"),
    (TUNER, "missing", lambda path: path.unlink(), "missing, while"),
    (TRIAL, "truncated", _truncated, "is corrupt (not valid JSON"),
    ("env.json", "format_string", _edit(results_format="three"), "is corrupt ('results_format' is a string"),
    (BEST, "truncated", _truncated, "is corrupt (not valid JSON"),
]:
    case(f"results_resume_{Path(_file).stem}_{_name}", f"{_file}: {_fragment}", check=unchanged)(
        lambda ctx, f=_file, c=_content: _resume(ctx, f, c))

# A folder where the resume of a finished study writes a file: one line naming it, the folder left as it was.
for _file, _fragment in [("trials.csv", "is a folder, not a file, so it cannot be written"),
                         ("best.keras", "is a folder, not a file, so it cannot be written"),
                         (BEST, "is a folder"), ("env.json", "is a folder")]:
    case(f"results_resume_{_file.replace('.', '_')}_a_folder", f"{_file}: {_fragment}",
         check=unchanged_but_tuner_state)(
        lambda ctx, f=_file: _resume(ctx, f, _folder))


@case("results_resume_saves_best_from_a_garbage_checkpoint", f"{CHECKPOINT_BEST}: is corrupt")
def _(ctx):
    root = ctx.results()
    (root / "best.keras").unlink()                  # the run saves it again from the best trial's checkpoint
    return _resume(ctx, CHECKPOINT_BEST, b"\x00garbage, not HDF5" * 10)


# ------------------------------------------------------- best.keras and checkpoints (export, predict, report --best)
def _lambda_model(path: Path) -> None:
    import keras
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Lambda(lambda x: x * 2.0)(inputs)
    keras.Model(inputs, outputs).save(path)


def _config_pointing_to(module: str, name: str):
    def rewrite(path: Path) -> None:
        with zipfile.ZipFile(path) as source:
            entries = {n: source.read(n) for n in source.namelist()}
        config = json.loads(entries["config.json"])
        config["config"]["layers"][1].update(module=module, class_name=name, registered_name=name)
        entries["config.json"] = json.dumps(config).encode()
        with zipfile.ZipFile(path, "w") as out:
            for n, data in entries.items():
                out.writestr(n, data)
    return rewrite


for _name, _content, _fragment in [
    ("truncated", _truncated, "corrupt or unreadable"),
    ("garbage", b"not a zip archive at all", "corrupt or unreadable"),
    ("empty", b"", "corrupt or unreadable"),
    ("folder", _folder, "corrupt or unreadable"),
    ("link_to_a_foreign_file", _foreign_link, "corrupt or unreadable"),
    ("lambda_layer", _lambda_model, "refused as unsafe"),
    ("os_system", _config_pointing_to("os", "system"), "refused as unsafe"),
]:
    case(f"results_export_best_keras_{_name}", f"best.keras: {_fragment}", check=unchanged)(
        lambda ctx, c=_content: ["export", _damage(ctx, "best.keras", c), "--to", ctx.tmp / "out.keras"])

case("results_predict_best_keras_os_system", "best.keras: refused as unsafe", check=unchanged)(
    lambda ctx: ["predict", _damage(ctx, "best.keras", _config_pointing_to("posix", "system")), _image(ctx)])
case("results_predict_best_keras_truncated", "best.keras: corrupt or unreadable", check=unchanged)(
    lambda ctx: ["predict", _damage(ctx, "best.keras", _truncated), _image(ctx)])
case("results_predict_best_json_class_names_string", f"{BEST}: is corrupt ('class_names' is a string",
     check=unchanged)(lambda ctx: ["predict", _damage(ctx, BEST, _edit(class_names="0123456789")), _image(ctx)])

for _command, _name, _content, _fragment in [
    ("export", "garbage", b"\x00garbage, not HDF5" * 10, "is corrupt"),
    ("export", "truncated", _truncated, "is corrupt"),
    ("export", "folder", _folder, "is a folder"),
    ("predict", "empty", b"", "is corrupt"),
    ("predict", "a_keras_file", lambda p: shutil.copyfile(p.parents[2] / "best.keras", p), "is corrupt"),
    ("report", "truncated", _truncated, "is corrupt"),
]:
    def _setup(ctx, command=_command, content=_content):
        root = _damage(ctx, CHECKPOINT_SECOND, content)
        if command == "export":
            return ["export", root, "--rank", "1", "--to", ctx.tmp / "out.keras"]
        if command == "predict":
            return ["predict", root, _image(ctx), "--rank", "1"]
        return ["report", root, "--best", "2", "--output", ctx.tmp / "report.md"]
    case(f"results_{_command}_second_checkpoint_{_name}", f"{CHECKPOINT_SECOND}: {_fragment}", check=unchanged)(_setup)
