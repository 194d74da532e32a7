"""The package's architecture, read from its code: imports run one way down the stack that pyproject.toml's
import-linter contracts declare (and `lint-imports` checks), with function-level imports and module names passed to
import_module / import_quietly counted too, which import-linter cannot see; no cycle; the README's layering line names
the same layers; keras-tuner's internals are touched by the adapter only; the command line imports only the API,
errors, the options' rules and the process-wide quieting of `lazy`."""
import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import hpstudy

try:
    import tomllib
except ModuleNotFoundError:     # Python 3.10: tomli, which import-linter brings there
    import tomli as tomllib

PACKAGE = Path(hpstudy.__file__).parent
ROOT = PACKAGE.parent


def contracts() -> dict[str, list[str]]:
    """Each import-linter layers contract of pyproject.toml: its container and its layers, highest first."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {c["containers"][0]: c["layers"] for c in config["tool"]["importlinter"]["contracts"]
            if c["type"] == "layers"}


def stack(container: str = "hpstudy") -> list[tuple[str, ...]]:
    """The layers lowest first, as module names; a layer that is itself a contract's container is replaced by that
    contract's layers (`hpstudy.engine` by its search, training, interrupt and progress)."""
    out = []
    for line in reversed(contracts()[container]):
        names = tuple(f"{container}.{name.strip()}" for name in re.split(r"[|:]", line))
        out += stack(names[0]) if names[0] in contracts() else [names]
    return out


# Lowest first: a module imports modules of its own layer or of lower ones only. The package itself (its __init__:
# the lazy verbs) is with the command line, at the top; a container's own __init__ sits with the lowest of its layers.
LAYERS = [*stack()[:-1], (*stack()[-1], "hpstudy")]


def modules() -> dict[str, Path]:
    """Every module of the package by its dotted name (a package by its own name)."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts).removesuffix(".__init__")] = path
    return out


def imports(name: str, path: Path, known) -> set[str]:
    """The hpstudy modules `name` imports, anywhere in it, resolved to modules that exist."""
    def resolve(dotted):
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {resolve(f"{node.module}.{a.name}") for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {resolve(a.name) for a in node.names}
        elif isinstance(node, ast.Call) and "import" in ast.unparse(node.func).lower():
            found |= {resolve(a.value) for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)
                      and re.fullmatch(r"hpstudy(\.\w+)+", a.value)}
    return {m for m in found if m and m.startswith("hpstudy") and m != name}


def layer(name: str) -> int:
    """The level of the layer holding module `name`: the layer naming it or a package above it (the package itself
    only by its own name); a contract's container (`hpstudy.engine`) is with the lowest of its layers."""
    if name in set(contracts()) - {"hpstudy"}:
        return min(level for level, members in enumerate(LAYERS) for m in members if m.startswith(name + "."))
    for level, members in enumerate(LAYERS):
        if any(name == m or (m != "hpstudy" and name.startswith(m + ".")) for m in members):
            return level
    raise AssertionError(f"{name} is in no layer of pyproject.toml's import-linter contracts")


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_every_module_is_in_one_layer_and_each_folder_is_named_once():
    names = [m for members in LAYERS for m in members if m != "hpstudy"]
    assert len(names) == len(set(names))
    assert not [(a, b) for a in names for b in names if b.startswith(a + ".")], "a layer inside another"
    assert {name: layer(name) for name in modules()}       # layer() raises for a module in none


def test_imports_run_down_the_layers():
    upward = [(name, dep) for name, deps in graph().items() for dep in deps
              if name != "hpstudy" and layer(dep) > layer(name)]
    assert upward == []


def test_no_import_cycle():
    edges = graph()
    cycles = []

    def visit(start, node, path):
        for nxt in edges.get(node, ()):
            if node.startswith(nxt + ".") or nxt.startswith(node + "."):
                continue        # a package and its own modules
            if nxt == start:
                cycles.append(path)
            elif nxt not in path and len(path) < 10:
                visit(start, nxt, path + [nxt])
    for name in edges:
        visit(name, name, [name])
    assert cycles == []


def test_the_command_line_imports_only_the_api_errors_options_and_lazy():
    # options: the rules of the options' values, which the parser checks with and the API too; analyze_cli: the
    # analyze command's flags, which import nothing heavy until it runs; lazy: how the command's own process quiets
    # and freezes the frameworks, which no API verb does to a user's process (so it is not an API verb);
    # results.status: the trial statuses, standard library only.
    assert graph()["hpstudy.cli"] <= {"hpstudy", "hpstudy.api", "hpstudy.errors", "hpstudy.study.options",
                                      "hpstudy.report.analyze_cli", "hpstudy.lazy", "hpstudy.results.status"}


def test_only_the_adapter_touches_keras_tuner_internals():
    touching = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            src = (node.module or "") if isinstance(node, ast.ImportFrom) else ""
            private = isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__") \
                and isinstance(node.value, ast.Name) and node.value.id in {"oracle", "tuner", "kt", "keras_tuner"}
            if src.startswith("keras_tuner.src") or private:
                touching.append(name)
    assert set(touching) == {"hpstudy.engine.search.adapter"}


def test_the_layering_test_can_fail(tmp_path):
    """A module of a low layer importing a high one is found (the scan reads function-level imports too)."""
    known = modules()
    low = tmp_path / "low.py"
    low.write_text("def f():\n    from hpstudy.report import pages\n"
                   "    import_quietly('hpstudy.engine.search.runner')\n")
    found = imports("hpstudy.study.low", low, known)
    assert found == {"hpstudy.report.pages", "hpstudy.engine.search.runner"}
    assert all(layer(m) > layer("hpstudy.study.low") for m in found)


def test_the_engine_runs_one_way_too(tmp_path):
    """Inside the engine: what a trial trains with never imports the search; Ctrl-C and progress import neither."""
    low = tmp_path / "low.py"
    low.write_text("from hpstudy.engine.search import runner\nfrom hpstudy.engine.training import compile\n")
    found = imports("hpstudy.engine.training.low", low, modules())
    assert found == {"hpstudy.engine.search.runner", "hpstudy.engine.training.compile"}
    assert layer("hpstudy.engine.search.runner") > layer("hpstudy.engine.training.low")
    assert layer("hpstudy.engine.training.compile") > layer("hpstudy.engine.progress")
    assert layer("hpstudy.engine") == layer("hpstudy.engine.interrupt") < layer("hpstudy.engine.training")
    assert layer("hpstudy.engine.search.distributed.roles") == layer("hpstudy.engine.search")


def test_the_readme_names_the_layers_lowest_first():
    """The README's layering line names the layers of pyproject.toml's contracts, each folder once, lowest first."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    line = re.search(r"Imports run one way, lowest first: (.*?)\. ", readme.replace("\n", " ")).group(1)
    named = [sorted(re.findall(r"`([\w/]+)`", group)) for group in line.split("←")]
    assert named == [sorted(m.removeprefix("hpstudy.").replace(".", "/") for m in members if m != "hpstudy")
                     for members in LAYERS]


def test_import_linter_keeps_the_contracts():
    """`lint-imports`, the command the README gives to see the stack, finds every contract kept."""
    pytest.importorskip("importlinter")
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert command, "import-linter is installed but its lint-imports command is not on PATH"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([command, "--no-cache"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_reports_and_evaluation_load_no_search_machinery():
    """`hpstudy report` (even with --best) never imports the tuner adapter or the distributed code."""
    edges = graph()
    for start in ("hpstudy.report.pages", "hpstudy.trained.evaluate", "hpstudy.trained.predict"):
        seen, todo = set(), [start]
        while todo:
            for nxt in edges[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        search = ("adapter", "distributed", "runner", "tuner")
        assert not {m for m in seen if m.startswith(tuple(f"hpstudy.engine.search.{name}" for name in search))}, start
