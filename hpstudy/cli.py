"""The `hpstudy` command: one handler per subcommand (`analyze`'s flags and handler: report.analyze_cli);
`main(argv) -> exit code`. Each handler turns its flags into an `api` verb's typed arguments and prints what it
returns. Nothing heavy is imported at module level, so `hpstudy --help` answers at once.
"""
from __future__ import annotations

import argparse
import os
import sys

from hpstudy import __version__, lazy
from hpstudy.errors import DiskFull, FreshProcessNeeded, HpstudyError, one_line, terminal_text
from hpstudy.report import analyze_cli
from hpstudy.results.status import TrialStatus
from hpstudy.study import options
from hpstudy.study.options import parser_type

DEFAULT_MEMORY_ALLOWANCE_MIB = 2048
_RESTARTED = "HPSTUDY_RESTARTED"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hpstudy", description="Hyperparameter studies of CNN image classifiers "
                                     "with Keras and keras-tuner.")
    parser.add_argument("--version", action="version", version=f"hpstudy {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_run, _add_confirm, _add_validate, _add_report, _add_serve, _add_list, _add_data, _add_export,
                _add_predict, analyze_cli.add):
        add(commands)
    return parser


def _add_run(commands) -> None:
    run = commands.add_parser("run", help="run a study's search (resumes an existing results folder)")
    run.add_argument("study", help="the study file (YAML)")
    run.add_argument("--results-dir", default="results", help="parent of the study's results folder (default: results)")
    run.add_argument("--max-trials", type=parser_type(options.positive, "--max-trials"),
                     help="override search.max_trials (raising it extends a study)")
    run.add_argument("--epochs", type=parser_type(options.positive, "--epochs"),
                     help="override train.epochs (and the epochs train.overrides set)")
    run.add_argument("--overwrite", action="store_true", help="delete the study's results folder and start over")
    run.add_argument("--verbose", action="store_true", help="show TensorFlow's logs and Keras's per-epoch lines")
    parallel = run.add_argument_group("distributed tuning (keras-tuner's chief and workers; see the README)")
    parallel.add_argument("--workers", type=parser_type(options.positive, "--workers"), metavar="N",
                          help="run N worker processes on this machine (spread over its GPUs, several per GPU when N "
                          "is larger) with a chief")
    parallel.add_argument("--role", type=parser_type(options.choice, "--role", options.ROLES),
                          metavar=options.metavar(options.ROLES), help="this process's part in a study shared by "
                          "several machines")
    parallel.add_argument("--bind", metavar="HOST:PORT", help="chief: where to listen (default 127.0.0.1:7940; "
                          "another host is reachable by anyone on the network)")
    parallel.add_argument("--chief", metavar="HOST:PORT", help="worker: where the chief listens")
    parallel.add_argument("--worker-id", help="worker: its id, the same when it is restarted (default: "
                          "<hostname>-<$SLURM_PROCID or 0>)")
    parallel.add_argument("--worker-timeout", type=parser_type(options.positive, "--worker-timeout"), metavar="SECONDS",
                          help="chief: give a worker's trial to another after this long without its heartbeat "
                          "(default 120)")
    parallel.add_argument("--chief-timeout", type=parser_type(options.positive, "--chief-timeout"), metavar="SECONDS",
                          help="worker: give up on a chief it cannot reach after this long, saying every few seconds "
                          "whom it waits for (default 600)")
    run.set_defaults(handler=_run)


def _add_confirm(commands) -> None:
    confirm = commands.add_parser("confirm", help="train a study's best configurations again with new seeds: "
                                  "their spread, the noise floor, whether the best is distinguishable")
    confirm.add_argument("path", metavar="PATH", help="the study's results folder, e.g. results/quickstart")
    confirm.add_argument("--top", type=parser_type(options.positive, "--top"), metavar="K",
                         help="the best K configurations (default: the study's search.confirm.top, else 3)")
    confirm.add_argument("--seeds", type=parser_type(options.seeds, "--seeds"), metavar="N",
                         help="new seeds for each (default: the study's search.confirm.seeds, else 5)")
    _add_verbose(confirm)
    confirm.set_defaults(handler=_confirm)


def _add_verbose(command) -> None:
    command.add_argument("--verbose", action="store_true", help="show TensorFlow's, absl's and scipy's log lines "
                         "and warnings (silenced by default)")


def _add_validate(commands) -> None:
    validate = commands.add_parser("validate", help="check a study file and build each model once, without training")
    validate.add_argument("study", help="the study file (YAML)")
    validate.set_defaults(handler=_validate)


def _add_report(commands) -> None:
    report = commands.add_parser("report", help="tables of one or more studies' trials and each "
                                 "hyperparameter's effect")
    report.add_argument("paths", nargs="+", metavar="PATH", help="results folder(s), e.g. results/quickstart")
    report.add_argument("--format", default="markdown", type=parser_type(options.choice, "--format", options.FORMATS),
                        metavar=options.metavar(options.FORMATS),
                        help="markdown, html and latex: trials and effects; csv and json: the trials table only")
    report.add_argument("--output", help="write to this file instead of standard output")
    report.add_argument("--sort", metavar="COL", help="sort the trials by this column (COL:asc or COL:desc to "
                        "choose; default: by score, best first, trials that did not complete last)")
    report.add_argument("--top", type=parser_type(options.positive, "--top"), metavar="K",
                        help="keep the first K trials (of each study) after sorting")
    report.add_argument("--best", type=parser_type(options.count, "--best"), metavar="K",
                        help="evaluate each study's K best models on the test split: per-class "
                        "precision/recall/F1, confusion matrix, predictions, learning curves "
                        "(figures in <output>_figures/; default 1 for markdown and html written with --output, "
                        "else 0)")
    _add_verbose(report)
    report.set_defaults(handler=_report)


def _add_serve(commands) -> None:
    serve = commands.add_parser("serve", help="a local web page of studies as they run: progress, the running "
                                "trial and its curve, the trials table, figures (refreshed every 2 s)")
    serve.add_argument("paths", nargs="+", metavar="PATH", help="results folder(s), e.g. results/quickstart")
    serve.add_argument("--host", default="127.0.0.1", help="where to listen (default 127.0.0.1: this machine only; "
                       "from another, tunnel: ssh -L 8765:127.0.0.1:8765 HOST)")
    serve.add_argument("--port", type=parser_type(options.port, "--port"), default=8765,
                       help="the port (default 8765; 0: any free one)")
    serve.set_defaults(handler=_serve)


def _add_list(commands) -> None:
    listing = commands.add_parser("list", help="what a study file can name: model builders or datasets")
    listing.add_argument("what", choices=("models", "datasets"))
    listing.add_argument("names", nargs="*", metavar="NAME", help="only these builders (default: all)")
    listing.set_defaults(handler=_list)


def _add_data(commands) -> None:
    data = commands.add_parser("data", help="datasets: list them, describe one, download one")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    listing = data_commands.add_parser("list", help="every dataset, where its data is and whether it is there")
    listing.add_argument("--data-dir", help="look here instead of the cache (as data.data_dir in a study)")
    listing.set_defaults(handler=_data_list)
    info = data_commands.add_parser("info", help="a dataset's split sizes and images per class")
    info.add_argument("name", help="a dataset name (see `hpstudy data list`)")
    info.add_argument("--data-dir", help="where the data is (as data.data_dir in a study)")
    info.add_argument("--image-size", type=parser_type(options.image_size, "--image-size"),
                      help="resize image files to this square (as data.image_size: folder and cinic10 only)")
    info.add_argument("--label-mode", type=parser_type(options.choice, "--label-mode", options.LABEL_MODES),
                      metavar=options.metavar(options.LABEL_MODES), help="cifar100's labels: fine (100 classes, the "
                      "default) or coarse (20 superclasses), as data.label_mode")
    info.set_defaults(handler=_data_info)
    download = data_commands.add_parser("download", help="download a dataset (cinic10 comes from Kaggle)")
    download.add_argument("name", help="a dataset name: mnist, fashion_mnist, cifar10, cifar100 or cinic10")
    download.add_argument("--dest", help="download into this folder (default: the cache, see `hpstudy data list`)")
    download.add_argument("--slug", help="the Kaggle dataset (owner/name) to download cinic10 from")
    download.set_defaults(handler=_data_download)


def _add_export(commands) -> None:
    export = commands.add_parser("export", help="write one of a study's best models as a .keras file that plain "
                                 "Keras loads (preprocessing included, no hpstudy needed)")
    export.add_argument("path", metavar="PATH", help="the study's results folder, e.g. results/quickstart")
    export.add_argument("--rank", type=parser_type(options.rank, "--rank"), default=0,
                        help="0: the best trial (default), 1: the second best, ...")
    export.add_argument("--to", required=True, metavar="FILE", help="the model file to write (ends in .keras)")
    _add_verbose(export)
    export.set_defaults(handler=_export)


def _add_predict(commands) -> None:
    predict = commands.add_parser("predict", help="classify image files with one of a study's best models")
    predict.add_argument("path", metavar="PATH", help="the study's results folder, e.g. results/quickstart")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...; any size)")
    predict.add_argument("--top", type=parser_type(options.positive, "--top"), default=3,
                         help="the most probable classes to show (default: 3)")
    predict.add_argument("--rank", type=parser_type(options.rank, "--rank"), default=0,
                         help="0: the best trial (default), 1: the second best, ...")
    _add_verbose(predict)
    predict.set_defaults(handler=_predict)


def _run(args) -> int:
    from hpstudy import api
    if args.workers:
        return _run_workers(args)
    if args.role:
        role = api.distributed_role(args.role, bind=args.bind, chief=args.chief, worker_id=args.worker_id,
                                    worker_timeout=args.worker_timeout, chief_timeout=args.chief_timeout)
    elif args.chief or args.worker_id or args.worker_timeout or args.bind or args.chief_timeout:
        raise HpstudyError("--bind, --chief, --worker-id, --worker-timeout and --chief-timeout need --role (or "
                           "--workers for local workers)")
    else:
        role = None
    try:
        study = api.run(args.study, results_dir=args.results_dir, max_trials=args.max_trials, epochs=args.epochs,
                        overwrite=args.overwrite and not _restarted(), verbose=args.verbose,
                        memory_allowance_mib=_memory_allowance(), role=role)
    except FreshProcessNeeded as grown:
        # TensorFlow keeps part of every model it trained; a new process starts from nothing, and resuming is exact.
        print(f"hpstudy: {grown}; continuing in a fresh process", flush=True)
        sys.stderr.flush()
        os.environ[_RESTARTED] = "1"
        os.execv(sys.executable, [sys.executable, "-m", "hpstudy.cli", *args.argv])
    if role is not None and role.name == "worker":     # the run said why the worker stopped
        return 0
    best = study.best
    trials = study.trials
    pruned, completed = (trials.status == TrialStatus.PRUNED).sum(), (trials.status == TrialStatus.COMPLETED).sum()
    print(f"{len(trials)} trials in {study.path} ({completed} completed"
          f"{f', {pruned} pruned' if pruned else ''})")
    if best:
        print(f"best: trial {best['trial_id']}  {best['objective']}={best['score']:.4f}  "
              f"test_accuracy={best['test_accuracy']:.4f}  -> {study.layout.best_model}")
    return 0


def _memory_allowance() -> float | None:
    """MiB a run may grow by before it continues in a fresh process: $HPSTUDY_MEMORY_ALLOWANCE_MIB (0: never)."""
    text = os.environ.get("HPSTUDY_MEMORY_ALLOWANCE_MIB", str(DEFAULT_MEMORY_ALLOWANCE_MIB))
    try:
        value = float(text)
    except ValueError:
        raise HpstudyError(f"HPSTUDY_MEMORY_ALLOWANCE_MIB={text!r}: expected a number of MiB (0 turns the "
                           "fresh-process restarts off)") from None
    return value if value > 0 else None


def _restarted() -> bool:
    """Whether this process continues a run that restarted itself (its --overwrite was done already)."""
    return os.environ.get(_RESTARTED) == "1"


def _run_workers(args) -> int:
    from hpstudy import api
    if args.role or args.chief or args.worker_id or args.bind or args.chief_timeout:
        raise HpstudyError("--workers starts its own chief and workers on this machine; leave out --role, --chief, "
                           "--bind, --worker-id and --chief-timeout (those are for several machines)")
    return api.run_workers(args.study, args.workers, results_dir=args.results_dir, max_trials=args.max_trials,
                           epochs=args.epochs, overwrite=args.overwrite, verbose=args.verbose,
                           worker_timeout=args.worker_timeout)


def _confirm(args) -> int:
    from hpstudy import api
    summary = api.confirm(args.path, top=args.top, seeds=args.seeds)
    floor = summary.get("noise_floor")
    print(f"{len(summary['configurations'])} configurations confirmed in {args.path}; noise floor (seed-to-seed std "
          f"of {summary['objective']}): {'%.4f' % floor if floor is not None else 'not measured'}")
    for config in summary["configurations"]:
        low, high = config["score_ci95"] or (None, None)
        interval = f" [{low:.4f}, {high:.4f}]" if low is not None else ""
        print(f"  trial {config['trial_id']:>4}  {summary['objective']} {config['score_mean']:.4f} "
              f"± {config['score_std'] or 0:.4f}{interval}  n={config['n']}")
    if summary.get("runner_up") is not None:
        verdict = "distinguishable" if summary["distinguishable"] else "not distinguishable"
        print(f"best by mean: trial {summary['winner']}, {verdict} from trial {summary['runner_up']}")
    return 0


def _validate(args) -> int:
    from hpstudy import api
    study, builds = api.validate(args.study)
    searched = ", ".join(t.name for t in study.tunables()) or "none (one configuration, trained in one trial)"
    better = "lower" if study.search.minimize else "higher"
    print(f"{args.study}: valid; searched: {searched}; objective: {study.search.objective} "
          f"({study.search.direction}, {better} is better); {builds} model build(s) checked")
    return 0


def _report(args) -> int:
    from hpstudy import api
    text = api.report(args.paths, format=args.format, sort=args.sort, top=args.top, best=args.best,
                      output=args.output)
    if not args.output:
        sys.stdout.write(terminal_text(text))      # on a terminal, no escape sequence from a value is acted on
    return 0


def _serve(args) -> int:
    from hpstudy import api
    try:
        api.serve(args.paths, host=args.host, port=args.port)
    except KeyboardInterrupt:          # Ctrl-C while it starts: as quiet as while it serves
        pass
    return 0


def _list(args) -> int:
    if args.what == "datasets":
        args.data_dir = None
        return _data_list(args)
    import pandas as pd

    from hpstudy import api
    for name, doc, rows in api.describe_models(args.names):
        print(f"{name}\n{'=' * len(name)}\n{doc}\n")
        print(pd.DataFrame(rows).to_markdown(index=False, tablefmt="plain"), end="\n\n")
    return 0


def _data_list(args) -> int:
    from hpstudy import api
    cache, table = api.datasets(args.data_dir)
    print(f"cache: {cache}  (set HPSTUDY_DATA_DIR to move it; decoded copies of image "
          f"files are in its decoded folder)")
    print(table.to_markdown(index=False, tablefmt="plain"))
    return 0


def _data_info(args) -> int:
    from hpstudy import api
    summary, counts = api.dataset_info(args.name, data_dir=args.data_dir, image_size=args.image_size,
                                       label_mode=args.label_mode)
    print(terminal_text(summary))                   # class names from the user's folders or arrays
    print(terminal_text(counts))
    return 0


def _data_download(args) -> int:
    from hpstudy import api
    folder = api.download(args.name, args.dest, slug=args.slug)
    print(f"{args.name}: ready in {folder}")
    return 0


def _export(args) -> int:
    from hpstudy import api
    done = api.export(args.path, args.to, rank=args.rank)
    shape, names = "x".join(str(n) for n in done.input_shape), one_line(", ".join(map(str, done.class_names)))
    colour = "greyscale" if done.input_shape[-1] == 1 else "RGB"
    print(f"{one_line(done.file)}: trial {done.trial_id} (rank {done.rank}); load it with keras.models.load_model; "
          f"it takes raw 0..255 {colour} images of {shape}, class order: {names}")
    return 0


def _predict(args) -> int:
    from hpstudy import api
    for prediction in api.predict(args.path, args.images, top=args.top, rank=args.rank):
        print(one_line(prediction.file))
        for name, probability in prediction.top:        # class names from a best.json that may come from anyone
            print(f"  {probability:.4f}  {one_line(name)}")
    return 0


def main(argv: list[str] | None = None, *, own_process: bool = False) -> int:
    """Run the command line; returns the exit code (2 for anything the user can fix). `own_process`: the process is
    the command's, not a caller's (entry), so hpstudy.lazy.freeze_after_keras applies."""
    args = _parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if own_process:
        lazy.freeze_after_keras()
        lazy.quiet_frameworks(getattr(args, "verbose", False))
    try:
        return args.handler(args)
    except HpstudyError as err:
        print(f"hpstudy: error: {one_line(str(err))}", file=sys.stderr)   # a name never splits the line
        if isinstance(err, DiskFull):
            _skip_teardown.append(err.exit_code)
        return err.exit_code
    except KeyboardInterrupt:
        print("hpstudy: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


# A disk that refused writes leaves native libraries (HDF5, under Keras's weights files) holding files they cannot
# flush, and their teardown at exit can crash the process. Everything hpstudy keeps is written (atomically) by
# then, so the command ends without that teardown.
_skip_teardown: list[int] = []


def entry() -> None:
    """The `hpstudy` command's entry point: `main`, then exit with its code."""
    code = main(own_process=True)
    if _skip_teardown:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
