"""How fast `hpstudy serve` answers for a 100-trial results folder, one trial of it running.

    python benchmarks/serve.py [--trials 100] [--repeats 20] [--from FOLDER] [--output benchmarks/serve.md]

The folder is synthetic but real: a tiny digits study (2 trials of 2 epochs) is run with `hpstudy run` (or
--from names a finished results folder), and its trial files are copied under new numbers as a run writes them
(keras-tuner's record, history, execution record, summary), the last one left RUNNING after its first epoch;
its spec.yaml becomes a random search of that many trials. The server runs in this process (no Keras) on a free
loopback port; each request is a new connection, as a browser's poll is. Timed, each with --repeats requests
(the cold start with 5 fresh servers):

- cold: the first `/state.json` of a fresh server (every trial file read, the table built, the running trial's
  curves and the report's figures drawn; the first of the 5 also imports matplotlib);
- unchanged: `/state.json` again with no file changed (the signature walk, then memory);
- a new epoch: the running trial's history rewritten with one more row before each request;
- a record rewritten: one trial's keras-tuner record rewritten (renamed into place, the same trials) before each
  request: the table is read again, the report's figures are not;
- a trial ended: as when a trial's status or score changes, the report's figures drawn again too (5 requests);
- a figure: one figure's PNG.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TINY = {"name": "tiny", "data": {"dataset": "digits", "subset": {"train": 12, "validation": 4, "test": 6}},
        "model": {"builder": "plain_cnn", "conv_layers": 1, "filters": 4, "dense_units": 8,
                  "dropout": {"tune": "choice", "values": [0.0, 0.5]}},
        "train": {"epochs": 2, "batch_size": 32}, "search": {"tuner": "grid", "seed": 1}}


def _write(path: Path, data: bytes) -> None:
    """As hpstudy writes: a temporary name renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def finished_folder(work: Path) -> Path:
    """A real finished results folder: the tiny study run by `hpstudy run`."""
    study = common.write_study(work, TINY)
    subprocess.run([sys.executable, "-m", "hpstudy.cli", "run", str(study), "--results-dir", str(work / "results")],
                   env={**os.environ, **common.QUIET}, check=True, stdout=subprocess.DEVNULL)
    return work / "results" / "tiny"


def grown_folder(source: Path, target: Path, trials: int) -> Path:
    """`source`'s trials copied into `target` as `trials` trials (trial i from source trial i % 2), the last one
    running after its first epoch."""
    from hpstudy.results.layout import TUNER_TRIAL_FILE, Layout
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("tuner", "trials", "best.keras"))
    old, new = Layout(source), Layout(target)
    spec = yaml.safe_load(old.spec.read_text())
    spec["search"].update(tuner="random", max_trials=trials)
    _write(new.spec, yaml.safe_dump(spec, sort_keys=False).encode())
    width = len(str(trials - 1))
    for number in range(trials):
        model = str(number % 2)
        record = json.loads((old.tuner_trial(model) / TUNER_TRIAL_FILE).read_text())
        record["trial_id"] = f"{number:0{width}d}"
        history = old.history(model).read_text()
        if number == trials - 1:
            record.update(status="RUNNING", score=None, best_step=None, metrics={"metrics": {}})
            history = "".join(history.splitlines(keepends=True)[:2])
        _write(new.tuner / f"trial_{record['trial_id']}" / TUNER_TRIAL_FILE, json.dumps(record).encode())
        _write(new.history(number), history.encode())
        if number != trials - 1:
            for name in ("execution_0.json", "summary.txt"):
                _write(new.trial(number) / name, (old.trial(model) / name).read_bytes())
    return target


def _get(address: tuple, target: str) -> float:
    """Seconds of one GET on a new connection (the whole body read)."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection(*address, timeout=120)
    connection.request("GET", target)
    answer = connection.getresponse()
    answer.read()
    connection.close()
    if answer.status != 200:
        raise RuntimeError(f"GET {target}: {answer.status}")
    return time.perf_counter() - started


def _started(server):
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def measure(folder: Path, repeats: int) -> dict[str, list[float]]:
    """Seconds per request of each case (see the module's doc)."""
    from hpstudy.results.layout import Layout
    from hpstudy.serve import watch
    from hpstudy.serve.server import open_server
    layout = Layout(folder)
    running = max(int(p.name) for p in layout.trials.iterdir())
    history, record = layout.history(running), next(iter(layout.tuner_trials()))
    cases = {"cold": []}
    for _ in range(5):
        watch._curves.cache_clear()                  # the figures drawn again, as in a new process
        watch._REPORT_FIGURES.clear()
        server = _started(open_server([str(folder)], port=0))
        cases["cold"].append(_get(server.server_address[:2], "/state.json"))
        server.shutdown()
        server.server_close()
    server = _started(open_server([str(folder)], port=0))
    address = server.server_address[:2]
    _get(address, "/state.json")
    rows = history.read_text().splitlines(keepends=True)
    cases["unchanged"] = [_get(address, "/state.json") for _ in range(repeats)]
    cases["a new epoch"] = []
    for epoch in range(repeats):
        _write(history, "".join([*rows, *[rows[-1]] * (epoch + 1)]).encode())
        cases["a new epoch"].append(_get(address, "/state.json"))
    cases["a record rewritten"], cases["a trial ended"] = [], []
    for _ in range(repeats):
        _write(record, record.read_bytes())
        cases["a record rewritten"].append(_get(address, "/state.json"))
    for _ in range(5):
        _write(record, record.read_bytes())
        watch._REPORT_FIGURES.clear()                # what a changed status or score does to its key
        cases["a trial ended"].append(_get(address, "/state.json"))
    figure = json.loads(http_body(address, "/state.json"))["studies"][0]["figures"][0]["url"]
    cases["a figure (PNG)"] = [_get(address, "/" + figure) for _ in range(repeats)]
    server.shutdown()
    server.server_close()
    return cases


def http_body(address: tuple, target: str) -> bytes:
    """The body of one GET."""
    connection = http.client.HTTPConnection(*address, timeout=120)
    connection.request("GET", target)
    body = connection.getresponse().read()
    connection.close()
    return body


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--from", dest="source", help="a finished results folder to copy (default: run one)")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "serve.md"))
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="hpstudy-serve-"))
    started = time.perf_counter()
    source = Path(args.source) if args.source else finished_folder(work)
    folder = grown_folder(source, work / "grown" / "tiny", args.trials)
    cases = measure(folder, args.repeats)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    lines = [f"# `hpstudy serve`: response time for a {args.trials}-trial folder", "",
             *common.machine_lines(common.machine()), "",
             f"Command: `python benchmarks/serve.py --trials {args.trials} --repeats {args.repeats}`; the folder: "
             f"{args.trials} trials ({size / 1024:.0f} KiB of trial files), the last one running; "
             f"{time.perf_counter() - started:.0f} s in all.", "",
             "| request | median ms | min ms | max ms | requests |", "|---|---:|---:|---:|---:|"]
    for name, seconds in cases.items():
        ms = [1000 * s for s in seconds]
        lines.append(f"| {name} | {statistics.median(ms):.1f} | {min(ms):.1f} | {max(ms):.1f} | {len(ms)} |")
    lines += ["", "A poll of an unchanged folder is one walk over its trial folders (a stat per file) and the JSON "
              "kept in memory. A new epoch of the running trial re-reads its history and redraws that trial's "
              "curves; a trial's record rewritten re-reads the trials table (every trial file) and renders it; a "
              "trial that ended also has the report's figures drawn again, in the poll that follows (most of its "
              "time). Each happens once per change, whatever the number of pages polling. The 2 cores may be "
              "shared with other work while this runs: read the medians."]
    text = "\n".join(lines) + "\n"
    Path(args.output).write_text(text)
    print(text)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
