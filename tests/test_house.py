"""The package's architecture, read from its code: imports run one way through the layers the README names (with
function-level imports and module names passed to import_module / import_quietly counted), with no cycle;
keras-tuner's internals are touched by the adapter only; the command line imports only the API, errors, the options'
rules and the process-wide quieting of `lazy`."""
import ast
import re
from pathlib import Path

import hpstudy

PACKAGE = Path(hpstudy.__file__).parent
# The README's layering, lowest first: a module imports modules of its own layer or of lower ones only.
LAYERS = [
    ("hpstudy.errors", "hpstudy.lazy", "hpstudy.text"),
    # results.files (atomic writes, capped reads) needs nothing but errors and text: the study file is read by it too.
    ("hpstudy.study", "hpstudy.results.files"),
    ("hpstudy.data", "hpstudy.models"),
    ("hpstudy.results.layout", "hpstudy.results.files", "hpstudy.results.lock", "hpstudy.results.folder",
     "hpstudy.results.trials", "hpstudy.results.outputs", "hpstudy.results.space", "hpstudy.results.status",
     "hpstudy.results.curves", "hpstudy.results.trials_table"),
    ("hpstudy.analysis",),
    ("hpstudy.engine",),
    ("hpstudy.results.models", "hpstudy.results.evaluate", "hpstudy.results.export", "hpstudy.results.predict"),
    ("hpstudy.report",),
    ("hpstudy.serve",),
    ("hpstudy.api",),
    ("hpstudy.cli", "hpstudy.preprocess", "hpstudy.training", "hpstudy"),
]


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
    for level, members in enumerate(LAYERS):
        if any(name == m or name.startswith(m + ".") for m in members):
            return level
    raise AssertionError(f"{name} is in no layer of the README's layering")


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


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
    assert set(touching) == {"hpstudy.engine.adapter"}


def test_the_layering_test_can_fail(tmp_path):
    """A module of a low layer importing a high one is found (the scan reads function-level imports too)."""
    known = modules()
    low = tmp_path / "low.py"
    low.write_text("def f():\n    from hpstudy.report import pages\n    import_quietly('hpstudy.engine.runner')\n")
    found = imports("hpstudy.study.low", low, known)
    assert found == {"hpstudy.report.pages", "hpstudy.engine.runner"}
    assert all(layer(m) > layer("hpstudy.study.low") for m in found)


def test_reports_and_evaluation_load_no_search_machinery():
    """`hpstudy report` (even with --best) never imports the tuner adapter or the distributed code."""
    edges = graph()
    for start in ("hpstudy.report.pages", "hpstudy.results.evaluate", "hpstudy.results.predict"):
        seen, todo = set(), [start]
        while todo:
            for nxt in edges[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        assert not {m for m in seen if m.startswith(("hpstudy.engine.adapter", "hpstudy.engine.distributed",
                                                     "hpstudy.engine.runner", "hpstudy.engine.tuner"))}, start
