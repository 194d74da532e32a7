"""Property tests of the study loader: whatever the input, a StudySpec or a one-line SpecError, nothing else.

The studies are drawn around the real keys (every section and field, `tune:` mappings of every kind,
model options, searched builders) so that the deep checks are reached, with hostile values in every
place: NaN, infinities, huge and negative numbers, control characters, wrong types. Raw text and bytes
exercise the YAML reader. A smaller number go through `hpstudy validate`, which also builds the models.
Derandomized: every run draws the same examples.
"""
import copy
import dataclasses
import functools
import math
import types
import typing

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings, strategies as st

from hpstudy import cli
from hpstudy.errors import SpecError
from hpstudy.study import spec
from hpstudy.study.schema import TUNABLE_SECTIONS, Range
from tests.helpers import examples

SOURCE = "studies/drawn.yaml"
SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

BUILDERS = ["plain_cnn", "vgg", "all_cnn", "lenet5", "deep_cnn", "resnet", "transfer"]
MODEL_OPTIONS = ["conv_layers", "convs_per_layer", "filters", "filters_growth", "kernel_size", "padding", "pooling",
                 "batch_norm", "dropout", "head", "dense_units", "kernel_initializer", "activation", "blocks",
                 "dropout_growth", "depth", "width", "stem", "variant", "backbone", "weights", "input_size",
                 "trainable_layers", "conv1_filters"]
TUNE_KEYS = ["tune", "values", "min_value", "max_value", "step", "sampling", "default"]
WORDS = sorted({*BUILDERS, *MODEL_OPTIONS, *TUNE_KEYS, *spec.SECTIONS, "name", "choice", "int", "float", "boolean",
                "log", "reverse_log", "linear", "adam", "sgd", "grid", "hyperband", "random", "bayesian",
                "val_accuracy", "val_loss", "digits", "cifar10", "folder", "npz", "same", "valid", "max", "gap",
                "dense", "mirrored", "all", "imagenet", "resnet50", "mobilenetv2", "../escape", "/abs/path", ".",
                "", "yes", "no", "1e-4", "~", "=", "<<", "2024-13-45", "a\nb", "\t", "x" * 120, "study\n"})

# ---------------------------------------------------------------- strategies
numbers = st.one_of(
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 2, 3, 8, 64, 10**6, 10**6 + 1, 2**32, 10**12, 10**30, -10**30, 10**400, 1e300,
                     -1e-300, 0.5, 1.0, 0.0, -0.0, 1.5, math.inf, -math.inf, math.nan]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.sampled_from(WORDS), st.text(max_size=12))
keys = st.one_of(st.sampled_from(WORDS), st.text(max_size=8), st.integers(-3, 3), st.booleans(), st.none())
junk = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
                    max_leaves=12)


def tune_mappings(values):
    """`{tune: ...}` mappings: real kinds and keys, with values drawn from `values`."""
    return st.fixed_dictionaries(
        {"tune": st.one_of(st.sampled_from(["choice", "int", "float", "boolean"]), scalars)},
        optional={"values": st.one_of(st.lists(values, max_size=4), values),
                  "min_value": values, "max_value": values, "step": values, "default": values,
                  "sampling": st.one_of(st.sampled_from(["linear", "log", "reverse_log"]), scalars),
                  "stray": values})


# Valid values, read off the study's annotations, so that a drawn study gets past its first key.
def valid(ann, name=""):
    if name == "dataset":
        return st.sampled_from(["digits", "cifar10", "cinic10", "folder", "npz", "cifar100"])
    if name == "data_dir":
        return st.sampled_from([None, "/nonexistent/drawn"])
    if name == "overrides":     # a valid override names the study's own searched values: drawn ones are junk
        return st.sampled_from([None, []])
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(valid(a, name) for a in args))
    if ann is type(None):
        return st.none()
    rng = None
    if origin is typing.Annotated:
        ann, rng = args[0], next((m for m in args[1:] if isinstance(m, Range)), None)
        return valid(ann, name) if rng is None else numbers_in(ann, rng)
    if origin is typing.Literal:
        return st.sampled_from(args)
    if dataclasses.is_dataclass(ann):
        hints = typing.get_type_hints(ann, include_extras=True)
        return st.fixed_dictionaries({}, optional={f.name: valid(hints[f.name], f.name)
                                                   for f in dataclasses.fields(ann)})
    if ann is dict:
        return st.dictionaries(st.sampled_from(["max_epochs", "factor", "max_retries_per_trial"]), st.integers(1, 5),
                               max_size=2)
    return {bool: st.booleans(), int: st.integers(0, 9), float: st.floats(0, 1)}.get(ann, scalars)


def numbers_in(base, rng):
    if base is int:
        return st.integers(int(rng.min), int(min(rng.max, rng.min + 40)))
    return st.floats(rng.min, min(rng.max, rng.min + 10), exclude_min=rng.min_open, exclude_max=rng.max_open)


def valid_tune(ann, name=""):
    """A searched value that fits `ann`: a choice of valid values, a range, or a boolean."""
    base = typing.get_args(ann)[0] if typing.get_origin(ann) is typing.Annotated else ann
    choice = st.lists(valid(ann, name), min_size=1, max_size=3, unique=True).map(
        lambda values: {"tune": "choice", "values": values})
    if base in (int, float):
        kind = "int" if base is int else "float"
        bounds = st.lists(valid(ann, name), min_size=2, max_size=2).map(sorted)
        return choice | bounds.map(lambda b: {"tune": kind, "min_value": b[0], "max_value": b[1]})
    return choice | st.just({"tune": "boolean"}) if base is bool else choice


def valid_section(cls, tunable):
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        fixed = "Fixed" in repr(hint) or dataclasses.is_dataclass(hint) or "Subset" in repr(hint)
        value = valid(hints[f.name], f.name)
        fields[f.name] = value | valid_tune(hints[f.name], f.name) if tunable and not fixed else value
    return st.fixed_dictionaries({}, optional=fields)


# A few valid options of each builder (small values: a drawn study may be built by `hpstudy validate`).
MODEL = {
    "plain_cnn": {"conv_layers": [1, 2, 3], "convs_per_layer": [1, 2], "filters": [4, 8], "kernel_size": [1, 3, 5],
                  "padding": ["same", "valid"], "pooling": ["max", "avg", "none"], "batch_norm": [True, False],
                  "dropout": [0.0, 0.5], "head": ["dense", "gap"], "dense_units": [8, 16],
                  "filters_growth": [1.0, 2.0]},
    "vgg": {"blocks": [1, 2, 3], "filters": [4, 8], "dropout": [0.1], "dropout_growth": [0.0, 0.1], "head": ["gap"]},
    "lenet5": {"conv1_filters": [4], "conv2_filters": [8], "pooling": ["max", "avg"], "activation": ["tanh", "relu"]},
    "deep_cnn": {"variant": ["simple", "deep"], "head": ["dense", "gap"], "dense_units": [8],
                 "bn_epsilon": [1e-5, 1e-3], "bn_momentum": [0.9], "bn_affine": [True, False]},
    "resnet": {"depth": [20], "width": [0.125, 0.25], "stem": ["cifar", "imagenet"]},
    "all_cnn": {"filters": [4, 8], "pooling": ["strided", "max"]},
    "transfer": {"backbone": ["mobilenetv2"], "weights": [None], "input_size": [32], "trainable_layers": [0, 2]},
}


def options_of(builder, searched):
    """Some of the builder's options, fixed or (if `searched`) now and then a choice."""
    def value(values):
        fixed = st.sampled_from(values)
        return fixed | st.lists(fixed, min_size=1, max_size=3, unique=True).map(
            lambda v: {"tune": "choice", "values": v}) if searched else fixed
    return st.fixed_dictionaries({}, optional={name: value(values) for name, values in MODEL[builder].items()})


def fixed_model(searched):
    return st.sampled_from(sorted(MODEL)).flatmap(
        lambda b: options_of(b, searched).map(lambda o: {"builder": b, **o}))


@st.composite
def searched_model(draw, searched):
    names = draw(st.lists(st.sampled_from(sorted(MODEL)), min_size=1, max_size=3, unique=True))
    model = {"builder": {"tune": "choice", "values": names}}
    for name in names:
        if draw(st.booleans()):
            model[name] = draw(options_of(name, searched))
    return model


def valid_studies(searched_options=True):
    """Valid studies; without `searched_options`, no model option is searched (validate builds fewer models)."""
    return st.fixed_dictionaries({"name": st.sampled_from(["s", "study-1", "a.b_c"])}, optional={
        "data": valid_section(spec.DataSpec, False),
        "model": fixed_model(searched_options) | searched_model(searched_options),
        **{name: valid_section(cls, name in TUNABLE_SECTIONS) for name, cls in spec.SECTIONS.items()
           if name not in ("data", "model")}})


def paths(obj, prefix=()):
    """Every place in a nested structure, as a tuple of keys and indices."""
    yield prefix
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        yield from paths(value, (*prefix, key))


@st.composite
def faulty(draw, study, leaves):
    """`study` with up to three faults: a value replaced by a hostile one, a key deleted, a stray key added."""
    raw = copy.deepcopy(draw(study))
    hostile = st.one_of(leaves, tune_mappings(leaves), junk)
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.sampled_from(list(paths(raw))))
        how = draw(st.sampled_from(["replace", "delete", "add"]))
        if not where:
            if how == "replace":
                raw = draw(hostile)
            elif how == "add" and isinstance(raw, dict):
                raw[draw(keys)] = draw(hostile)
            continue
        parent = functools.reduce(lambda node, key: node[key], where[:-1], raw)
        target = parent[where[-1]]
        if how == "replace":
            parent[where[-1]] = draw(hostile)
        elif how == "delete":
            del parent[where[-1]]
        elif isinstance(target, dict):
            target[draw(keys)] = draw(hostile)
        elif isinstance(target, list):
            target.append(draw(hostile))
    return raw


YAML_PIECES = ["name: s\n", "train:\n", "  epochs: ", "model: ", "{", "}", "[", "]", ", ", ": ", "- ", "? ", "'",
               '"', "#", "\n", "\t", "  ", "&a ", "*a ", "*b ", "---\n", "...\n", "%YAML 1.2\n", "<<: ", "1e-4", ".nan",
               "9" * 50, "tune: choice", "values: [1, 2]", "!!python/object/apply:os.system ", "!!float ", "!!int ",
               "!!bool ", "!!timestamp ", "!!binary ", "!!set ", "!!omap ", "!!str ", "!custom ", "|\n", ">-\n",
               "\\", "\u2028", "\x85", "\ufeff", "2024-13-45"]
yaml_text = st.one_of(st.text(max_size=80), st.lists(st.sampled_from(YAML_PIECES), max_size=25).map("".join))


# ---------------------------------------------------------------- the property
def loads_or_one_line_error(load, source: str):
    """Run `load()`: a StudySpec that survives a round trip through its own YAML, or a one-line SpecError."""
    try:
        study = load()
    except SpecError as err:
        message = str(err)
        assert message.startswith(f"{source}: "), message
        assert len(message.splitlines()) == 1 and message.strip() == message, message
        event(f"refused at {message[len(source) + 2:].split(':')[0][:30]}")   # --hypothesis-show-statistics
        return None
    assert isinstance(study, spec.StudySpec)
    event(f"loaded, {len(study.tunables())} searched")
    again = spec.loads(yaml.safe_dump(study.to_dict()), source=source)
    assert again == study and again.to_dict() == study.to_dict()
    return study


@settings(max_examples=examples(500), **SETTINGS)
@given(faulty(valid_studies(), scalars))
def test_drawn_studies_load_or_fail_in_one_line(raw):
    loads_or_one_line_error(lambda: spec.from_dict(raw, source=SOURCE), SOURCE)
    text = yaml.safe_dump(raw, allow_unicode=True)
    loads_or_one_line_error(lambda: spec.loads(text, source=SOURCE), SOURCE)


@settings(max_examples=examples(300), **SETTINGS)
@given(st.dictionaries(st.sampled_from(["name", *spec.SECTIONS]), junk, max_size=7) | junk)
def test_any_yaml_data_loads_or_fails_in_one_line(raw):
    loads_or_one_line_error(lambda: spec.from_dict(raw, source=SOURCE), SOURCE)
    loads_or_one_line_error(lambda: spec.loads(yaml.safe_dump(raw), source=SOURCE), SOURCE)


@settings(max_examples=examples(400), **SETTINGS)
@given(yaml_text)
def test_any_text_loads_or_fails_in_one_line(text):
    loads_or_one_line_error(lambda: spec.loads(text, source=SOURCE), SOURCE)


@pytest.fixture(scope="module")
def study_file(tmp_path_factory):
    return tmp_path_factory.mktemp("drawn") / "drawn.yaml"


@settings(max_examples=examples(200), **SETTINGS)
@given(data=st.one_of(st.binary(max_size=80), yaml_text.map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_any_file_loads_or_fails_in_one_line(study_file, data):
    study_file.write_bytes(data)
    loads_or_one_line_error(lambda: spec.load(study_file), str(study_file))


# ---------------------------------------------------------------- through `hpstudy validate`
# Small values only: a study this draws may be valid, and validate then builds its models.
small = st.one_of(st.none(), st.booleans(), st.sampled_from([-1, 0, 1, 2, 3, 64, 10**12, 0.0, 0.5, 1.5, -0.5,
                                                             math.nan, math.inf]),
                  st.sampled_from([w for w in WORDS if len(w) < 20]))


def without_data(raw):
    """Point data.data_dir nowhere: a drawn folder dataset must not read this machine's files."""
    if isinstance(raw, dict) and isinstance(raw.get("data"), dict):
        raw["data"]["data_dir"] = "/nonexistent/drawn"
    return raw


# capsys is read out before each example, so sharing it between examples is safe.
@settings(max_examples=examples(25), **{**SETTINGS, "suppress_health_check": [HealthCheck.too_slow,
                                                                     HealthCheck.function_scoped_fixture]})
@given(raw=faulty(valid_studies(searched_options=False), small).map(without_data))
def test_validate_exits_0_or_2_with_one_line(study_file, capsys, raw):
    study_file.write_text(yaml.safe_dump(raw))
    capsys.readouterr()
    rc = cli.main(["validate", str(study_file)])
    out, err = capsys.readouterr()
    assert rc in (0, 2) and "Traceback" not in err
    if rc == 2:
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"hpstudy: error: {study_file}"), err
        event(f"refused at {lines[0][len(f'hpstudy: error: {study_file}: '):].split(':')[0][:30]}")
    else:
        assert f"{study_file}: valid" in out
        event(f"valid: {out.split('; ')[-1].strip()}")


# ---------------------------------------------------------------- numbers too long to print
HUGE = 10**5000     # str() refuses an int of more than 4,300 digits (YAML refuses to read one: see tests/hostile)


TOO_LARGE = "too large to be a number (beyond 1.8e308); got about 1e5000"


@pytest.mark.parametrize("raw, message", [
    ({"name": HUGE}, "name: must be 1-100 letters, digits, '_', '-' or '.', starting with a letter or digit; "
                     "got the number about 1e5000"),
    ({"name": "s", "train": {"epochs": HUGE}}, "train.epochs: must be in [1, 1e+06]; got about 1e5000"),
    ({"name": "s", "train": {"learning_rate": -HUGE}}, "train.learning_rate: must be in (0, 1e+06]; got about -1e5000"),
    ({"name": "s", "train": {"optimizer": HUGE}},
     "train.optimizer: got the number about 1e5000; allowed: adam, adamw, sgd, rmsprop"),
    # A tuner's argument is typed by its default only (checked with Keras): the loader refuses what no float holds.
    ({"name": "s", "search": {"options": {"factor": HUGE}}}, f"search.options.factor: {TOO_LARGE}"),
    ({"name": "s", "search": {"options": {"factor": [1, HUGE]}}},
     "search.options.factor: a value is too large to be a number (beyond 1.8e308)"),
    ({"name": "s", "model": {"filters": {"tune": "int", "min_value": HUGE, "max_value": 1}}},
     "model.filters: min_value (about 1e5000) is greater than max_value (1)"),
    ({"name": "s", "model": {"filters": {"tune": "int", "min_value": 0, "max_value": 1, "step": HUGE}}},
     "model.filters.step: about 1e5000 is larger than the range 0 to 1, which leaves min_value alone to search; "
     "use a smaller step or a fixed value"),
    ({"name": "s", "model": {"filters": {"tune": "int", "min_value": 0, "max_value": HUGE, "default": -1}}},
     "model.filters.default: must be in [0, about 1e5000]; got -1"),
    ({"name": "s", "model": {"filters": {"tune": "choice", "values": [0.5, HUGE]}}},
     f"model.filters.values[1]: {TOO_LARGE}"),
    ({"name": "s", "model": {"filters": {"tune": "choice", "values": [HUGE, HUGE]}}},
     f"model.filters.values[0]: {TOO_LARGE}"),
    ({"name": "s", "train": {"batch_size": {"tune": "choice", "values": [HUGE, 1]}}},
     "train.batch_size.values[0]: must be in [1, 1e+06]; got about 1e5000"),
], ids=lambda raw: "-".join(map(str, raw)) if isinstance(raw, dict) else "")
def test_numbers_too_long_to_print_are_refused_in_one_line(raw, message):
    with pytest.raises(SpecError) as caught:
        spec.from_dict(raw, source=SOURCE)
    assert str(caught.value) == f"{SOURCE}: {message}"

