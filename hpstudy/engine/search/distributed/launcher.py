"""`hpstudy run STUDY --workers N`: a chief and N worker processes on this machine, one study.

Each process is an `hpstudy run` whose role flags come from its `Role` (`Role.flags`). Their output is streamed
with a prefix naming each process; a worker that dies is started again under its id (the chief gives it back
its trial); Ctrl-C stops them all. Nothing heavy is imported here.
"""
from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from hpstudy.engine.search.distributed.roles import CHIEF, DEFAULT_WORKER_TIMEOUT, WORKER, Role, free_port
from hpstudy.errors import HpstudyError
from hpstudy.results.layout import Layout

MAX_RESTARTS = 3            # per worker: a worker that keeps dying is left dead (the chief reassigns its trial)
CHIEF_WAIT_SECONDS = 600    # for the chief to load the data and check the models before workers may start
STOP_SECONDS = 20           # after Ctrl-C, or after the chief finishes, before the stragglers are killed


def max_local_workers() -> int:
    """The most workers `--workers` starts on this machine: four per GPU, or two per CPU core without GPUs (each
    worker is a process with its own framework and its own copy of the data), at least 4 and never more than 64."""
    return min(64, max(4, 4 * len(gpus()) or 2 * (os.cpu_count() or 1)))


def check_local_workers(workers: int) -> None:
    """Refuse, before any process starts, more local workers than this machine can run."""
    most = max_local_workers()
    if workers > most:
        devices = f"{len(gpus())} GPUs" if gpus() else f"{os.cpu_count()} CPU cores and no GPU"
        raise HpstudyError(f"--workers {workers}: at most {most} on this machine ({devices}; each worker is a "
                           "process with its own framework and data); for more, run workers on several machines "
                           "with --role worker")


# Workers are spread over these GPUs (each worker's CUDA_VISIBLE_DEVICES), several per GPU when N is larger than
# their number.
def gpus() -> list[str]:
    """The GPUs workers may use: CUDA_VISIBLE_DEVICES if set, else what nvidia-smi lists (none: [])."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    if not shutil.which("nvidia-smi"):
        return []
    listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout
    return [str(i) for i, line in enumerate(listed.splitlines()) if line.startswith("GPU ")]


class _Process:
    """One child `hpstudy run`, its output lines pushed to a shared queue with its name."""

    def __init__(self, name: str, command: list[str], env: dict, lines: queue.Queue):
        self.name, self.command, self.env, self.lines, self.restarts = name, command, env, lines, 0
        self.start()

    def start(self):
        # A session of its own: the launcher decides when each child is interrupted.
        """Start the process (again, after it died), its output pumped to the shared queue."""
        self.popen = subprocess.Popen(self.command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, bufsize=1, start_new_session=True)
        threading.Thread(target=self._pump, args=(self.popen,), daemon=True).start()

    def _pump(self, popen):
        for line in popen.stdout:
            self.lines.put((self.name, line.rstrip("\n")))

    def signal(self, sig):
        """Send `sig` to the process's group, if it still runs."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)


def run_command(study_path: str, role: Role, *, results_dir: str, max_trials: int | None = None,
                epochs: int | None = None, overwrite: bool = False, verbose: bool = False) -> list[str]:
    """The command line of one process of a local study: `hpstudy run` of the study with `run`'s options, as
    `role` (its flags made by `Role.flags`, which the process reads back as the same Role)."""
    options = ["--overwrite"] * overwrite + ["--verbose"] * verbose
    for flag, value in (("--max-trials", max_trials), ("--epochs", epochs)):
        if value is not None:
            options += [flag, str(value)]
    return [sys.executable, "-m", "hpstudy.cli", "run", study_path, "--results-dir", results_dir, *options,
            *role.flags()]


def launch(study_path: str, workers: int, *, results_dir: str, name: str, max_trials: int | None = None,
           epochs: int | None = None, overwrite: bool = False, verbose: bool = False,
           worker_timeout: int | None = None, stream=None) -> int:
    """Run the study with a chief and `workers` local workers; returns the chief's exit code.

    `max_trials`, `epochs`, `overwrite` and `verbose` are `run`'s, for every process; `worker_timeout` the chief's."""
    check_local_workers(workers)
    stream = stream or sys.stdout
    # Ctrl-C, or a plain kill of this process, stops them all: also where a shell started this process with
    # SIGINT ignored (a background job), which Python would otherwise leave ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    chief_role = Role(CHIEF, "127.0.0.1", free_port(), worker_timeout=worker_timeout or DEFAULT_WORKER_TIMEOUT)

    def command(role: Role) -> list[str]:
        return run_command(study_path, role, results_dir=results_dir, max_trials=max_trials, epochs=epochs,
                           overwrite=overwrite, verbose=verbose)
    chief_file = Layout(Path(results_dir) / name).chief_state
    chief_file.unlink(missing_ok=True)
    # Workers that share a GPU must not each take all of its memory at start.
    env = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false", "TF_FORCE_GPU_ALLOW_GROWTH": "true",
           "PYTHONUNBUFFERED": "1"}
    lines: queue.Queue = queue.Queue()
    chief = _Process(CHIEF, command(chief_role), env, lines)
    processes = [chief]
    try:
        if not _wait_for_chief(chief, chief_file, lines, stream):
            return _finish(processes, lines, stream)
        devices = gpus()
        for i in range(workers):
            worker_env = dict(env)
            if devices:
                worker_env["CUDA_VISIBLE_DEVICES"] = devices[i % len(devices)]
            name = f"worker{i}"
            role = Role(WORKER, chief_role.host, chief_role.port, worker_id=name)
            processes.append(_Process(name, command(role), worker_env, lines))
        while chief.popen.poll() is None:
            _print_lines(lines, stream, timeout=0.5)
            for worker in processes[1:]:
                code = worker.popen.poll()
                if code not in (None, 0) and worker.restarts < MAX_RESTARTS:
                    worker.restarts += 1
                    print(f"[launcher] {worker.name} exited with {code}; starting it again "
                          f"({worker.restarts}/{MAX_RESTARTS})", file=stream, flush=True)
                    worker.start()
        return _finish(processes, lines, stream)
    except KeyboardInterrupt:
        print("[launcher] interrupted: stopping the chief and the workers", file=stream, flush=True)
        for process in processes:       # SIGTERM: they may ignore SIGINT as this one did; everything is saved
            process.signal(signal.SIGTERM)
        _finish(processes, lines, stream)
        return 130


def _wait_for_chief(chief: _Process, chief_file: Path, lines, stream) -> bool:
    """Wait until the chief has prepared the results folder (so workers never race it); False if it exited."""
    deadline = time.monotonic() + CHIEF_WAIT_SECONDS
    while not chief_file.exists() and time.monotonic() < deadline:
        if chief.popen.poll() is not None:
            return False
        _print_lines(lines, stream, timeout=0.2)
    return chief.popen.poll() is None


def _finish(processes: list[_Process], lines, stream) -> int:
    """Wait for every process (killing what outlives STOP_SECONDS), print what is left; the chief's exit code."""
    deadline = time.monotonic() + STOP_SECONDS
    for process in processes:
        while process.popen.poll() is None and time.monotonic() < deadline:
            _print_lines(lines, stream, timeout=0.2)
        process.signal(signal.SIGKILL)
        process.popen.wait()
    time.sleep(0.1)
    _print_lines(lines, stream, timeout=0)
    return processes[0].popen.returncode


def _print_lines(lines: queue.Queue, stream, timeout: float) -> None:
    try:
        name, line = lines.get(timeout=timeout) if timeout else lines.get_nowait()
        while True:
            # The workers print their own trials; the chief's copy of each trial line would repeat them.
            if not (name == "chief" and line.startswith("trial ")):
                print(f"[{name}] {line}", file=stream, flush=True)
            name, line = lines.get_nowait()
    except queue.Empty:
        pass
