"""Docstrings people's tools can read, as the README's development section says: every module's docstring says
what it holds in at most 80 words, and the public surface documents its parameters and what it returns in Google
style (`Args:`, `Returns:`), as keras-tuner and Optuna do. The surface: `hpstudy.api.__all__` (a class with its
constructor and public methods; a property reads as an attribute, so it needs neither section), `HpstudyError`'s
public subclasses and `FreshProcessNeeded` where their constructors take arguments, and the extension points the
README names."""
import ast
import inspect
import re
import textwrap
from pathlib import Path

import pytest

import hpstudy
from hpstudy import api

PACKAGE = Path(hpstudy.__file__).parent
README = PACKAGE.parent / "README.md"
MAX_WORDS = 80
# The extension points, as the README's development section names them (checked below).
EXTENSION_POINTS = ("hpstudy.models.register", "hpstudy.models.build", "hpstudy.models.builder",
                    "hpstudy.data.register", "hpstudy.data.load", "hpstudy.data.download", "hpstudy.text.read_csv")
# The errors a caller catches: HpstudyError's family, and what `run` stops with to ask for a fresh process.
ERROR_ROOTS = ("HpstudyError", "FreshProcessNeeded")
SECTION = re.compile(r"(Args|Arguments|Returns|Yields|Raises|Attributes|Examples?|Notes?|Warnings?|See Also):")
ENTRY = re.compile(r"(\*{0,2}\w+)( \([^)]*\))?:( |$)")


# ---------------------------------------------------------------- reading a Google-style docstring
def sections(doc: str) -> dict[str, list[str]]:
    """A docstring's sections (`Args`, `Returns`, ...) and their indented lines; the prose before them is ''."""
    out, current = {"": []}, ""
    for line in inspect.cleandoc(doc or "").splitlines():
        if SECTION.fullmatch(line.strip()) and not line.startswith(" "):
            current = line.strip()[:-1]
            out[current] = []
        elif current and line and not line.startswith(" "):
            current = ""                      # text back at the left margin ends a section
            out[current].append(line)
        else:
            out[current].append(line)
    return out


def entries(lines: list[str]) -> list[str | None]:
    """The names an `Args:` section documents, one per entry (None for an entry line that is not `name: ...`)."""
    indents = [len(line) - len(line.lstrip()) for line in lines if line.strip()]
    if not indents:
        return []
    found = [ENTRY.match(line.strip()) for line in lines
             if line.strip() and len(line) - len(line.lstrip()) == min(indents)]
    return [match[1] if match else None for match in found]


def problems(doc: str, parameters: list[str], returns: bool) -> list[str]:
    """What a docstring lacks: an `Args:` entry for each parameter (and none for a parameter that is not there),
    `Returns:` (or `Yields:`) where the function returns a value, and its prose before the sections."""
    found = sections(doc)
    out = [] if "".join(found[""]).strip() else ["no description before its sections"]
    if parameters:
        named = entries(found.get("Args", found.get("Arguments", [])))
        if not named:
            out.append("no Args: section")
        else:
            out += ["Args: an entry that is not `name: meaning`" for name in named if name is None]
            out += [f"Args: no entry for {name}" for name in parameters if name not in named]
            out += [f"Args: {name} is not a parameter" for name in named if name and name not in parameters]
    if returns and not any("".join(found.get(key, [])).strip() for key in ("Returns", "Yields")):
        out.append("no Returns: section")
    return out


def parameters_of(function) -> list[str]:
    """The parameters a caller passes: not self or cls; *args and **kwargs as written."""
    stars = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}
    return [stars.get(p.kind, "") + name for i, (name, p) in enumerate(inspect.signature(function).parameters.items())
            if not (i == 0 and name in ("self", "cls"))]


def returns_value(function) -> bool:
    """Whether `function` returns something: a return annotation other than None, or a `return <value>` of its
    own (not of a function nested in it)."""
    annotation = inspect.signature(function).return_annotation
    if annotation is not inspect.Signature.empty:
        return annotation not in (None, "None")
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    todo, found = list(ast.iter_child_nodes(tree.body[0])), False
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(node, (ast.Yield, ast.YieldFrom)) or (isinstance(node, ast.Return) and node.value is not None
                                                             and not (isinstance(node.value, ast.Constant)
                                                                      and node.value.value is None)):
            found = True
        todo += ast.iter_child_nodes(node)
    return found


# ---------------------------------------------------------------- the surface
def resolve(dotted: str):
    """The object a dotted name such as hpstudy.models.register names."""
    module, _, name = dotted.rpartition(".")
    return getattr(__import__(module, fromlist=[name]), name)


def members(name: str, obj) -> dict[str, tuple[str, list[str], bool]]:
    """name -> (docstring, parameters, whether it returns a value) of a function, or of a class's constructor
    (documented in the class's docstring or in __init__'s) and its own public methods."""
    if not inspect.isclass(obj):
        return {name: (inspect.getdoc(obj) or "", parameters_of(obj), returns_value(obj))}
    out = {}
    if "__init__" in vars(obj) and parameters_of(obj.__init__):
        own = obj.__init__.__doc__ or ""
        out[f"{name}()"] = (own if "Args:" in own else obj.__doc__ or "", parameters_of(obj.__init__), False)
    for attribute, value in vars(obj).items():
        if not attribute.startswith("_") and inspect.isfunction(value):
            out[f"{name}.{attribute}"] = (inspect.getdoc(value) or "", parameters_of(value), returns_value(value))
    return out


def error_classes() -> dict[str, tuple[str, list[str], bool]]:
    """The constructors of HpstudyError's public subclasses and FreshProcessNeeded that take arguments, read from
    the code of the whole package (no module imported)."""
    classes = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                classes[node.name] = (node, [ast.unparse(base).rpartition(".")[2] for base in node.bases], path)
    family, grown = set(ERROR_ROOTS), True
    while grown:
        more = {name for name, (_, bases, _) in classes.items() if family.intersection(bases)} - family
        family |= more
        grown = bool(more)
    out = {}
    for name in sorted(family):
        node, _, path = classes[name]
        init = next((f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
        if name.startswith("_") or init is None:
            continue
        args = [a.arg for a in init.args.posonlyargs + init.args.args + init.args.kwonlyargs][1:]
        args += [f"*{init.args.vararg.arg}"] if init.args.vararg else []
        args += [f"**{init.args.kwarg.arg}"] if init.args.kwarg else []
        if args:
            own = ast.get_docstring(init) or ""
            out[f"{path.relative_to(PACKAGE.parent)}:{name}()"] = (own if "Args:" in own else
                                                                   ast.get_docstring(node) or "", args, False)
    return out


def surface() -> dict[str, tuple[str, list[str], bool]]:
    """Every documented callable of the public surface: name -> (docstring, parameters, returns a value)."""
    out = {}
    for name in api.__all__:
        out.update(members(f"hpstudy.api.{name}", getattr(api, name)))
    for dotted in EXTENSION_POINTS:
        out.update(members(dotted, resolve(dotted)))
    out.update(error_classes())
    return out


# ---------------------------------------------------------------- the rules
def test_module_docstrings_say_what_the_module_holds_in_at_most_80_words():
    long = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        if len(doc.split()) > MAX_WORDS:
            long[str(path.relative_to(PACKAGE.parent))] = len(doc.split())
    assert long == {}, f"module docstrings over {MAX_WORDS} words (move the reasoning to a comment where it applies)"


def test_the_public_surface_has_args_and_returns():
    found = surface()
    assert {"hpstudy.api.run", "hpstudy.api.Study()", "hpstudy.api.Study.history", "hpstudy.models.register",
            "hpstudy/errors.py:FreshProcessNeeded()"} <= set(found)     # the surface is what it says it is
    missing = {name: lacks for name, (doc, parameters, returns) in found.items()
               if (lacks := problems(doc, parameters, returns))}
    assert missing == {}


def test_the_readme_names_the_surface_this_test_checks():
    paragraph = next(p for p in README.read_text(encoding="utf-8").split("\n\n") if p.startswith("**Docstrings.**"))
    named = set(re.findall(r"`(hpstudy\.[\w.]+)`", paragraph)) - {"hpstudy.api.__all__"}
    assert named == set(EXTENSION_POINTS)
    assert all(f"`{name}`" in paragraph for name in ("hpstudy.api.__all__", "Study", *ERROR_ROOTS,
                                                      "tests/test_docstrings.py"))


# ---------------------------------------------------------------- the checker itself
@pytest.mark.parametrize("doc, parameters, returns, expected", [
    ("Do it.\n\nArgs:\n    path: where.\n    top: how many\n        (wrapped).\n\nReturns:\n    The thing.",
     ["path", "top"], True, []),
    ("Do it.\n\nArgs:\n    path: where.\n\nReturns:\n    The thing.", ["path", "top"], True,
     ["Args: no entry for top"]),
    ("Do it.\n\nArgs:\n    path (str): where.\n    *args: more.\n    **options: the rest.", ["path", "*args",
                                                                                          "**options"], False, []),
    ("Do it with `path`.", ["path"], False, ["no Args: section"]),
    ("Do it.\n\nArgs:\n    path: where.", ["path"], True, ["no Returns: section"]),
    ("Do it.\n\nArgs:\n    path: where.\n    gone: no more.", ["path"], False, ["Args: gone is not a parameter"]),
    ("Do it.\n\nArgs:\n    the path, and where.", ["path"], False,
     ["Args: an entry that is not `name: meaning`", "Args: no entry for path"]),
    ("\nArgs:\n    path: where.", ["path"], False, ["no description before its sections"]),
])
def test_the_checker_finds_what_a_docstring_lacks(doc, parameters, returns, expected):
    assert problems(doc, parameters, returns) == expected


def test_returns_are_read_from_the_annotation_or_the_code():
    def annotated() -> int:
        """."""

    def bare():
        """."""
        def inner():
            return 1
        return None

    def gives():
        """."""
        if gives:
            return [1]

    assert (returns_value(annotated), returns_value(bare), returns_value(gives)) == (True, False, True)
