"""The Python API: verbs with keyword-only options (the most used re-exported by `hpstudy`), the same verbs the
command line is made of. Heavy modules (Keras, and so TensorFlow) are imported by the verbs that need them.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from hpstudy.engine.search.distributed.roles import Role, from_flags
from hpstudy.errors import HpstudyError
from hpstudy.lazy import import_quietly
from hpstudy.report.study_results import Study, load_best, load_study
from hpstudy.results import folder
from hpstudy.results.lock import FolderLock
from hpstudy.study import options, spec as spec_module
from hpstudy.study.spec import StudySpec

# The public verbs, and only they: what `from hpstudy.api import *` and an editor's completion offer.
__all__ = ["load_spec", "run", "Study", "load_study", "load_best", "confirm", "validate", "run_workers",
           "distributed_role", "report", "analyze", "serve", "export", "predict", "describe_models", "datasets",
           "dataset_info", "download"]


def distributed_role(role: str, *, bind: str | None = None, chief: str | None = None, worker_id: str | None = None,
                     worker_timeout: int | None = None, chief_timeout: int | None = None) -> Role:
    """The part this process takes in a study shared by several machines, for `run(role=...)`; checked as
    `hpstudy run --role ...` checks its flags.

    Args:
        role: "chief" (serves the trials) or "worker" (trains them).
        bind: the chief's HOST:PORT to listen at; None: 127.0.0.1:7940.
        chief: a worker's chief, HOST:PORT (a worker needs it).
        worker_id: a worker's name; None: this machine's name and $SLURM_PROCID.
        worker_timeout: a chief's seconds of a worker's silence before its trial goes to another; None: 120.
        chief_timeout: a worker's seconds before it gives up on a chief it cannot reach; None: 600.

    Returns:
        The Role, for `run(role=...)`."""
    return from_flags(role, bind=bind, chief=chief, worker_id=worker_id, worker_timeout=worker_timeout,
                      chief_timeout=chief_timeout)


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a study file (no Keras needed).

    Args:
        path: the study's YAML file.

    Returns:
        The validated StudySpec, every default filled in.

    Raises:
        SpecError: the file breaks a rule (one line naming the file, the key and what is allowed)."""
    return spec_module.load(path)


def run(study: str | Path | StudySpec, *, results_dir: str | Path = "results", max_trials: int | None = None,
        epochs: int | None = None, overwrite: bool = False, verbose: bool = False, stream=None,
        memory_allowance_mib: float | None = None, role: Role | None = None) -> "Study":
    """Run a study's search, resuming its results folder if it exists.

    Args:
        study: a study file, or a StudySpec (`load_spec`).
        results_dir: the folder that holds the study's results folder, `<results_dir>/<study name>`.
        max_trials: in place of the study's search.max_trials; None: the study's.
        epochs: in place of the study's train.epochs (and the epochs its train.overrides set); None: the study's.
        overwrite: start the results folder over instead of resuming it.
        verbose: show TensorFlow's logs and Keras's per-epoch lines.
        stream: where the progress lines go; None: standard output.
        memory_allowance_mib: stop with FreshProcessNeeded (between trials, everything saved) once the process has
            grown by more than this: call run again from a new process to continue; None: no limit.
        role: this process's part in a distributed study (see `distributed_role`); None: a study of its own.

    Returns:
        The finished Study.

    Raises:
        HpstudyError: a bad study or value, missing data, a results folder of another study or in use, or
            search.max_failed_trials failed trials (SearchError); each one line.
        FreshProcessNeeded: the process grew past `memory_allowance_mib`."""
    max_trials, epochs = options.positive(max_trials, "--max-trials"), options.positive(epochs, "--epochs")
    if not isinstance(study, StudySpec):
        study = spec_module.load(study)
    study = with_flags(study, max_trials=max_trials, epochs=epochs)
    runner = import_quietly("hpstudy.engine.search.runner", verbose=verbose)
    layout = runner.run(study, results_dir=results_dir, overwrite=overwrite, verbose=verbose, stream=stream,
                        memory_allowance_mib=memory_allowance_mib, role=role)
    return Study(layout.root)


def with_flags(study: StudySpec, *, max_trials: int | None = None, epochs: int | None = None) -> StudySpec:
    """`study` with `hpstudy run`'s --max-trials and --epochs in place of its own search.max_trials and epochs
    (train.epochs and the epochs its train.overrides set: every trial's), checked like the file's own values."""
    if max_trials is None and epochs is None:
        return study
    raw = study.to_dict()
    if max_trials is not None:
        raw["search"]["max_trials"] = max_trials
    if epochs is not None:
        raw["train"]["epochs"] = epochs
        for override in raw["train"]["overrides"]:
            if "epochs" in override["set"]:
                override["set"]["epochs"] = epochs
    return spec_module.from_dict(raw, source=study.source)


def confirm(path: str | Path, *, top: int | None = None, seeds: int | None = None, stream=None) -> dict:
    """Train a finished study's top configurations again with new seeds each, resuming the repeats already done.

    Args:
        path: the study's results folder.
        top: how many of the best configurations; None: the study's search.confirm, else 3.
        seeds: new seeds for each (at least 2); None: the study's search.confirm, else 5.
        stream: where the progress lines go; None: standard output.

    Returns:
        The summary best.json keeps: each configuration's intervals, the noise floor, whether the best is
        distinguishable.

    Raises:
        ResultsError: no completed trial yet, a damaged folder, or one a run is using."""
    top, seeds = options.positive(top, "--top"), options.seeds(seeds)
    layout = folder.open_folder(path)
    confirm_module = import_quietly("hpstudy.engine.search.confirm")
    with FolderLock(layout):             # it writes repeats and best.json: not while a run uses the folder
        return confirm_module.confirm(layout, top=top, seeds=seeds, stream=stream)


def run_workers(study_path: str | Path, workers: int, *, results_dir: str | Path = "results",
                max_trials: int | None = None, epochs: int | None = None, overwrite: bool = False,
                verbose: bool = False, worker_timeout: int | None = None) -> int:
    """Run a study with a chief and worker processes on this machine, as `hpstudy run --workers`. A bad study or
    value stops here, before any process starts.

    Args:
        study_path: the study file.
        workers: how many worker processes.
        results_dir: `run`'s, for every process.
        max_trials: `run`'s, for every process.
        epochs: `run`'s, for every process.
        overwrite: `run`'s, for every process.
        verbose: `run`'s, for every process.
        worker_timeout: the chief's (see `distributed_role`); None: 120 seconds.

    Returns:
        The chief's exit code."""
    workers = options.required(options.positive(workers, "--workers"), "--workers", options.POSITIVE)
    max_trials, epochs = options.positive(max_trials, "--max-trials"), options.positive(epochs, "--epochs")
    worker_timeout = options.positive(worker_timeout, "--worker-timeout")
    if worker_timeout is not None:      # checked as the chief will check it, before any process starts
        from_flags("chief", worker_timeout=worker_timeout)
    from hpstudy.engine.search.distributed import launcher
    name = load_spec(study_path).name
    return launcher.launch(str(study_path), workers, results_dir=str(results_dir), name=name, max_trials=max_trials,
                           epochs=epochs, overwrite=bool(overwrite), verbose=bool(verbose),
                           worker_timeout=worker_timeout)


def validate(study_path: str | Path) -> tuple[StudySpec, int]:
    """Check a study file completely without training, building each model once (no pretrained weights).

    Args:
        study_path: the study file.

    Returns:
        (the study with defaults filled, the number of models built).

    Raises:
        HpstudyError: the study breaks a rule or a model cannot be built (one line saying where)."""
    study = load_spec(study_path)
    checks = import_quietly("hpstudy.engine.search.checks")
    hypermodel = import_quietly("hpstudy.engine.search.hypermodel")
    study = checks.check(study)
    input_shape, num_classes = hypermodel.data_shape(study)
    return study, checks.build_each(study, input_shape, num_classes, pretrained=False)


def export(path: str | Path, to: str | Path, *, rank: int = 0):
    """Write the `rank`-th best model of a study to a .keras file that plain Keras loads.

    Args:
        path: the study's results folder.
        to: the file to write, ending in .keras.
        rank: 0 the best trial's model, 1 the second best's, ...

    Returns:
        What was written: the file, the trial, its input shape and class names."""
    rank = options.required(options.rank(rank), "--rank", options.RANK)
    return import_quietly("hpstudy.trained.export").export(path, to, rank=rank)


def predict(path: str | Path, images: list, *, top: int = 3, rank: int = 0) -> list:
    """The most probable classes of each image file by the `rank`-th best model of a study.

    Args:
        path: the study's results folder.
        images: the image files (a single path stands for itself).
        top: how many classes for each image.
        rank: 0 the best trial's model, 1 the second best's, ...

    Returns:
        One Prediction per image: its file and (class name, probability) pairs, most probable first."""
    images = options.some(images, "IMAGE", "image files")
    top = options.required(options.positive(top, "--top"), "--top", options.POSITIVE)
    rank = options.required(options.rank(rank), "--rank", options.RANK)
    from hpstudy.trained import predict as predict_module
    return predict_module.predict(path, images, top=top, rank=rank)


def report(paths: list, *, format: str = "markdown", sort: str | None = None, top: int | None = None,
           best: int | None = None, output: str | Path | None = None) -> str:
    """The report of results folders as text. Markdown and html written to `output` show every study's figures
    (`plots.figures`: markdown links PNGs in `<output>_figures/`, html embeds them), and the best models of each
    study evaluated on the test split, their figures next to `output`.

    Args:
        paths: the results folders (a single path stands for itself).
        format: markdown, csv, json, html or latex.
        sort: the column to sort the trials by (COL:asc or COL:desc); None: by score, best first.
        top: keep the first `top` trials of each study after sorting; None: all.
        best: how many of each study's best models to evaluate (markdown and html with `output` only); None: 1
            for those, else 0.
        output: the file to write the report to (replaced whole, never through a link, never onto a results
            folder's records: `results.outputs`); None: the text is only returned.

    Returns:
        The report's text."""
    paths = options.some(paths, "PATH", "results folders")
    format = options.required(options.choice(format, "--format", options.FORMATS), "--format",
                              f"one of {', '.join(options.FORMATS)}")
    top, best = options.positive(top, "--top"), options.count(best, "--best")
    from hpstudy.report import pages, tables
    from hpstudy.results import outputs
    if output and not Path(output).parent.is_dir():   # before any (slow) evaluation
        raise HpstudyError(f"{output}: cannot write the report (no folder {Path(output).parent})")
    if output:       # before any work: never onto a results folder's records, never through a link
        outputs.check(output, "the report")
        beside = outputs.check(Path(output).with_name(Path(output).stem + "_figures"), "the report's figures",
                               folder=True)
        outputs.check_writable(Path(output).parent, "the report")     # a read-only folder: said now
        if beside.is_dir():
            outputs.check_writable(beside, "the report's figures")
    built = tables.build(paths, sort=sort, top=top)
    best = best if best is not None else int(bool(output) and format in ("markdown", "html"))
    if best < 0 or (best and (not output or format not in ("markdown", "html"))):
        raise HpstudyError("--best: evaluating models needs --output FILE and --format markdown or html "
                           "(the figures are written next to the report)")
    figures = Path(output).with_name(Path(output).stem + "_figures") if output else None
    if output and format in ("markdown", "html"):     # markdown links PNG files, html embeds them
        built.folder = Path(output).parent
        tables.add_figures(built, figures if format == "markdown" else None)
    if best and figures is not None:                  # figures: best needs an output, checked above
        built.best = tables.evaluate_best(paths, figures, best)
    text = pages.render(built, format)
    if best and output and format == "markdown":
        text += "\n" + pages.best_models_markdown(built, Path(output).parent)
    if output:
        outputs.write_text(output, text, "the report")
    return text


def analyze(trials: pd.DataFrame | str | Path, objective: str, *, direction: str | None = None,
            hyperparameters: list[str] | None = None, log=(), question=(),
            repeats: pd.DataFrame | str | Path | None = None):
    """The report's analysis of any tool's trials table. No Keras is imported.

    Args:
        trials: a trials table (a DataFrame, or a CSV file): a column per hyperparameter, `objective`'s column,
            optional `status` (rows other than COMPLETED are left out) and `trial_id`.
        objective: the objective's column.
        direction: "max" or "min"; None: from the objective's name, as in a study.
        hyperparameters: the columns to analyse; None: every column but the objective, bookkeeping and metrics.
        log: the hyperparameters searched on a log scale.
        question: the scientific hyperparameters, compared at their best setting of the others.
        repeats: seed repeats as rows of trial_id, seed and the objective (a DataFrame or a CSV file), for the
            noise floor; None: none.

    Returns:
        A `report.analyze.Analysis`: `.effects` are the JSON report's effect records, `.render(format)` the
        report, `str()` its answer.

    Raises:
        HpstudyError: a table that cannot be analysed (one line naming it and what is wrong)."""
    from hpstudy.report import analyze as analyze_module
    options = {"direction": direction, "hyperparameters": hyperparameters, "log": log, "question": question}
    if isinstance(trials, (str, Path)):
        return analyze_module.analyze_files(trials, objective, repeats=repeats, **options)
    if isinstance(repeats, (str, Path)):
        repeats = analyze_module.read_table(repeats)
    return analyze_module.analyze(trials, objective, repeats=repeats, **options)


def serve(paths: list, *, host: str = "127.0.0.1", port: int = 8765, stream=None) -> None:
    """Serve a live web page of results folders until Ctrl-C: each study's progress, running trials with their
    curves so far, trials table and figures, refreshed as its trial files change. Read only (no lock taken,
    nothing written); any host but loopback is a warning on stderr.

    Args:
        paths: the results folders (a single path stands for itself).
        host: the address to listen at.
        port: the port to listen at; 0: any free one.
        stream: where it says where it listens; None: standard output.

    Raises:
        HpstudyError: a folder that is not a study's, or a port in use."""
    paths = options.some(paths, "PATH", "results folders")
    port = options.required(options.port(port), "--port", options.PORT)
    from hpstudy.serve import server
    server.serve(list(paths), host=host, port=port, stream=stream)


def describe_models(names: list[str] | tuple[str, ...] = ()) -> list[tuple[str, str, list[dict]]]:
    """Each model builder's description and options, as `hpstudy list models` shows them.

    Args:
        names: the builders to describe; empty: all.

    Returns:
        (name, description, one row per option: its name, default and what it allows) of each builder."""
    models = import_quietly("hpstudy.models")
    out = []
    for name in names or sorted(models.BUILDERS):
        models.builder(name)    # an unknown name: one line listing the known ones
        out.append((name, *models.describe(name)))
    return out


def datasets(data_dir: str | None = None) -> tuple[str, pd.DataFrame]:
    """The datasets hpstudy knows, as `hpstudy data list` shows them.

    Args:
        data_dir: look here instead of the cache (as data.data_dir in a study); None: the cache.

    Returns:
        (the cache folder, one row per dataset: where its data is or goes, whether it is there, decoded copies)."""
    from hpstudy.data import catalog
    return catalog.cache_root(), catalog.listing(data_dir)


def dataset_info(name: str, *, data_dir: str | None = None, image_size: int | None = None,
                 label_mode: str | None = None) -> tuple[str, str]:
    """A dataset's split sizes and images per class, as `hpstudy data info` shows them (nothing is downloaded).

    Args:
        name: the dataset.
        data_dir: where its data is (as data.data_dir in a study); None: its own place.
        image_size: resize image files to this square (as data.image_size); None: their own size.
        label_mode: a labelling of a dataset that has several (cifar100: fine or coarse); None: its default.

    Returns:
        (split sizes, images per class and split), as text.

    Raises:
        DataError: the data is missing or cannot be read."""
    label_mode = options.choice(label_mode, "--label-mode", options.LABEL_MODES)
    image_size = options.image_size(image_size)
    from hpstudy import data
    from hpstudy.data import catalog
    dataset = data.load(name, data_dir=data_dir, image_size=image_size, download=False, label_mode=label_mode)
    return catalog.summary(dataset), catalog.class_counts(dataset).to_string()


def download(name: str, dest: str | None = None, *, slug: str | None = None) -> Path:
    """Download a dataset, as `hpstudy data download` does.

    Args:
        name: a dataset that downloads.
        dest: the folder to download into; None: the cache.
        slug: the Kaggle dataset (owner/name) to download cinic10 from; None: its default.

    Returns:
        The folder the dataset is in.

    Raises:
        DataError: missing credentials, or a failed download."""
    from hpstudy import data
    if slug is not None and name != "cinic10":
        raise HpstudyError("--slug: only for cinic10, which comes from Kaggle")
    return data.download(name, dest, **({"slug": slug} if slug is not None else {}))
