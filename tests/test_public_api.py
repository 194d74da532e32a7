"""The public API as a newcomer meets it: `import hpstudy` is light and reaches every verb (completion and type
stubs show them), `hpstudy.api` exports verbs only, and every Python example of the README runs as written, in a
fresh interpreter, against a tiny real results folder at the paths the README names."""
import ast
import inspect
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
import tomllib

import hpstudy
from hpstudy import api, cli
from hpstudy.errors import HpstudyError

ROOT = Path(hpstudy.__file__).parents[1]
README = ROOT / "README.md"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
       "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}


def python(code: str, cwd=ROOT) -> subprocess.CompletedProcess:
    """`python -c code` in a fresh interpreter."""
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=300)


def test_import_hpstudy_is_light_and_reaches_every_verb():
    done = python("""
import sys
import hpstudy
heavy = [m for m in ("keras", "tensorflow", "pandas", "hpstudy.api") if m in sys.modules]
assert not heavy, f"import hpstudy imported {heavy}"
shown = dir(hpstudy)
assert "api" in shown and set(hpstudy.__all__) <= set(shown), shown
for name in hpstudy.api.__all__:
    assert callable(getattr(hpstudy.api, name)), name
assert hpstudy.api.confirm and hpstudy.load_study is hpstudy.api.load_study
assert "keras" not in sys.modules, "reaching the verbs imported Keras"
print("ok")
""")
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr


def test_an_unknown_name_is_still_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'load_bets'"):
        _ = hpstudy.load_bets


# Where the verbs are defined: api itself, and report.study_results (Study, load_study, load_best: a study read back
# in Python), which api re-exports.
HOMES = ("hpstudy.api", "hpstudy.report.study_results")


def test_api_exports_its_own_verbs_only():
    """No helper of the command line or of the process (Role, import_quietly, ...) among the verbs."""
    for name in api.__all__:
        verb = getattr(api, name)
        assert (inspect.isfunction(verb) or inspect.isclass(verb)) and verb.__module__ in HOMES, name
        assert inspect.getdoc(verb), f"api.{name} has no docstring"
    assert {"Role", "import_quietly", "freeze_after_keras", "quiet_frameworks"}.isdisjoint(api.__all__)
    # Every public function defined in api is a verb: a new one is exported, or named as private.
    defined = {name for name, value in vars(api).items() if not name.startswith("_")
               and (inspect.isfunction(value) or inspect.isclass(value)) and value.__module__ == "hpstudy.api"}
    assert defined - set(api.__all__) == {"with_flags"}      # run's flags applied to a study, tested on its own


def test_the_stub_shows_editors_what_the_package_gives():
    """hpstudy/__init__.pyi names each lazy verb from where it lives, and ships in the wheel (PEP 561)."""
    stub = ast.parse((ROOT / "hpstudy" / "__init__.pyi").read_text())
    imported = {alias.asname: (node.module, alias.name) for node in stub.body if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    assert set(imported) == {*hpstudy.__all__, "api"} - {"__version__"}
    for shown, (module, name) in imported.items():
        assert getattr(hpstudy, shown) is getattr(sys.modules[module], name), shown
    stub_all = next(node.value for node in stub.body if isinstance(node, ast.Assign)
                    and node.targets[0].id == "__all__")
    assert ast.literal_eval(stub_all) == hpstudy.__all__
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert {"py.typed", "__init__.pyi"} <= set(package_data["hpstudy"])
    assert (ROOT / "hpstudy" / "py.typed").is_file()


# ---------------------------------------------------------------- the README's examples
# What a README example would run for minutes or forever, and the same call on the tiny study instead.
SHORTER = {
    "top=3, seeds=5": "top=1, seeds=2",   # the tiny study confirmed its best with 2 seeds: nothing left to train
    "port=8765": "port=0",                # any free port: the suite's processes and other servers share the machine
}

# The quickstart as the README names it, small enough to run in seconds: a question, 4 trials that all learn
# something (an importance ranking needs 4), seed repeats.
TINY_QUICKSTART = """
name: quickstart
question: [model.dropout]
data:
  dataset: digits
  subset: {train: 120, validation: 40, test: 20}
model:
  builder: plain_cnn
  conv_layers: 1
  filters: 8
  dense_units: 16
  kernel_size: {tune: choice, values: [3, 5]}
  dropout: {tune: choice, values: [0.0, 0.5]}
train:
  epochs: 4
  batch_size: 16
  learning_rate: 0.005
search:
  tuner: grid
  seed: 1
  confirm: {top: 1, seeds: 2}
"""


def readme_examples() -> list[str]:
    """Every ```python block of the README, and every `python -c "..."` command in it."""
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)
    return blocks + re.findall(r'python -c "([^"]+)"', text)


@pytest.fixture(scope="module")
def readme_folder(tmp_path_factory):
    """A folder laid out as the README's examples expect: studies/quickstart.yaml (tiny), its finished results in
    results/quickstart, and a copy of them as results/dropout_kernel."""
    root = tmp_path_factory.mktemp("readme")
    (root / "studies").mkdir()
    (root / "studies" / "quickstart.yaml").write_text(TINY_QUICKSTART)
    hpstudy.run(root / "studies" / "quickstart.yaml", results_dir=root / "results")
    shutil.copytree(root / "results" / "quickstart", root / "results" / "dropout_kernel")
    return root


def test_the_readme_has_python_examples_and_each_shortening_applies():
    examples = readme_examples()
    assert len(examples) >= 3 and any("hpstudy.api." in example for example in examples)
    for long in SHORTER:
        assert any(long in example for example in examples), f"{long!r} is in no README example any more"


def run_example(code: str, cwd: Path) -> tuple[int, str, str]:
    """Run a README example as `python -c`; a live view it starts is fetched once, then stopped with Ctrl-C."""
    for long, short in SHORTER.items():
        code = code.replace(long, short)
    with open(cwd / "stderr.txt", "w+") as stderr:
        process = subprocess.Popen([sys.executable, "-c", code], cwd=cwd, env=ENV, stdout=subprocess.PIPE,
                                   stderr=stderr, text=True)
        watchdog = threading.Timer(300, process.kill)
        watchdog.start()
        lines = []
        for line in process.stdout:
            lines.append(line)
            served = re.match(r"hpstudy serve: .* at (http://\S+)", line)
            if served:
                with urllib.request.urlopen(served.group(1), timeout=30) as page:
                    lines.append(f"fetched: {page.status}\n")
                process.send_signal(signal.SIGINT)
        code = process.wait()
        watchdog.cancel()
        stderr.seek(0)
        return code, "".join(lines), stderr.read()


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(readme_examples())),
                         ids=[example.strip().splitlines()[0][:40] for example in readme_examples()])
def test_every_readme_python_example_runs(readme_folder, index):
    example = readme_examples()[index]
    code, out, err = run_example(example, readme_folder)
    assert code == 0, f"README example failed:\n{example}\n{err[-3000:]}"
    if "serve(" in example:
        assert "fetched: 200" in out


# ---------------------------------------------------------------- verbs the command line is made of
def test_run_workers_takes_typed_values_and_hands_them_to_the_launcher(tmp_path, monkeypatch):
    from hpstudy.engine.search.distributed import launcher
    study = tmp_path / "quickstart.yaml"
    study.write_text(TINY_QUICKSTART)
    launched = []
    monkeypatch.setattr(launcher, "launch", lambda *args, **kwargs: launched.append((args, kwargs)) or 0)
    assert api.run_workers(study, 2, results_dir=tmp_path, max_trials=3, epochs=1, overwrite=True,
                           worker_timeout=30) == 0
    (args, kwargs), = launched
    assert args == (str(study), 2)
    assert kwargs == {"results_dir": str(tmp_path), "name": "quickstart", "worker_timeout": 30, "max_trials": 3,
                      "epochs": 1, "overwrite": True, "verbose": False}
    with pytest.raises(HpstudyError, match="^--epochs: expected a positive integer, got '0'$"):
        api.run_workers(study, 2, epochs=0)
    assert len(launched) == 1


def test_the_command_gives_run_workers_its_flags_as_typed_values(monkeypatch):
    calls = []
    monkeypatch.setattr(api, "run_workers", lambda *args, **kwargs: calls.append((args, kwargs)) or 0)
    assert cli.main(["run", "s.yaml", "--workers", "2", "--max-trials", "3", "--verbose",
                     "--worker-timeout", "30"]) == 0
    assert calls == [(("s.yaml", 2), {"results_dir": "results", "max_trials": 3, "epochs": None,
                                      "overwrite": False, "verbose": True, "worker_timeout": 30})]


@pytest.mark.slow
def test_report_writes_the_whole_report_and_the_command_writes_the_same(finished_study, tmp_path):
    """api.report(output=...) writes the text, its figures and the best model's evaluation; `hpstudy report
    --output` is that call (the same file, nothing written twice)."""
    path, _ = finished_study
    (tmp_path / "api").mkdir()
    (tmp_path / "cli").mkdir()
    text = api.report([path], format="markdown", output=tmp_path / "api" / "report.md")
    assert (tmp_path / "api" / "report.md").read_text() == text
    figures = tmp_path / "api" / "report_figures"
    linked = re.findall(r"\]\((report_figures/[^)]+\.png)\)", text)
    assert linked and all((tmp_path / "api" / name).is_file() for name in linked)
    assert any("confusion" in name for name in linked), "the best model's evaluation is missing"
    assert cli.main(["report", str(path), "--output", str(tmp_path / "cli" / "report.md")]) == 0
    assert (tmp_path / "cli" / "report.md").read_text() == text
    assert sorted(p.name for p in figures.iterdir()) == sorted(p.name for p in (tmp_path / "cli" /
                                                                               "report_figures").iterdir())
