"""Who this process is in a distributed study: the chief (holds the oracle, serves it over gRPC) or a worker
(asks the chief for trials and runs them), and where the chief listens. No Keras.

hpstudy reads the `Role` it is given, never the environment. keras-tuner reads its own variables (see
`keras_tuner_environment`), set around a run and restored after it.
"""
from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
from dataclasses import dataclass
from typing import Iterator, TypeGuard

from hpstudy.errors import HpstudyError
from hpstudy.results.layout import CHIEF
from hpstudy.study import options

WORKER = "worker"
DEFAULT_PORT = 7940
HEARTBEAT_SECONDS = 2.0
DEFAULT_WORKER_TIMEOUT = 120.0    # seconds without a heartbeat before a worker's trial is given to another
MIN_WORKER_TIMEOUT = 10           # five heartbeats: one late write must not cost a worker its trial
DEFAULT_CHIEF_TIMEOUT = 600.0     # seconds a worker waits for a chief it cannot reach (not started yet, restarting)
# What keras-tuner reads to decide whether it is a chief (KERASTUNER_TUNER_ID "chief"), a worker (any other id) or
# a search of its own (none of them), and where the chief listens.
KERAS_TUNER_VARIABLES = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


@dataclass(frozen=True)
class Role:
    """This process's part in a distributed study."""

    name: str                                   # CHIEF or WORKER
    host: str                                   # where the chief listens
    port: int
    worker_id: str | None = None                # a worker's id (the same when it is restarted)
    worker_timeout: float = DEFAULT_WORKER_TIMEOUT    # the chief's patience with a silent worker
    chief_timeout: float = DEFAULT_CHIEF_TIMEOUT      # a worker's patience with a chief it cannot reach

    @property
    def address(self) -> str:
        """HOST:PORT of the chief."""
        return f"{self.host}:{self.port}"

    def environment(self) -> dict[str, str]:
        """keras-tuner's variables for this role: its id ("chief", or the worker's), where the chief listens."""
        return {"KERASTUNER_TUNER_ID": CHIEF if self.name == CHIEF else str(self.worker_id),
                "KERASTUNER_ORACLE_IP": self.host, "KERASTUNER_ORACLE_PORT": str(self.port)}

    def flags(self) -> list[str]:
        """The `hpstudy run` flags of a process with this role, which `from_flags` reads back as this Role: how
        the local launcher starts its chief and its workers."""
        if self.name == CHIEF:
            return ["--role", CHIEF, "--bind", self.address, "--worker-timeout", _seconds(self.worker_timeout)]
        return ["--role", WORKER, "--chief", self.address, "--worker-id", str(self.worker_id),
                "--chief-timeout", _seconds(self.chief_timeout)]


def is_worker(role: Role | None) -> TypeGuard[Role]:
    """Whether `role` makes this process a worker of a distributed study (None: a study of its own)."""
    return role is not None and role.name == WORKER


def is_chief(role: Role | None) -> TypeGuard[Role]:
    """Whether `role` makes this process the chief of a distributed study (None: a study of its own)."""
    return role is not None and role.name == CHIEF


@contextlib.contextmanager
def keras_tuner_environment(role: Role | None) -> Iterator[None]:
    """keras-tuner's variables as `role` says while the block runs (none of them without a role, so that a
    variable left in the environment cannot make keras-tuner a chief or a worker behind hpstudy's back); the
    variables as they were before restored after, however the block ends.

    keras-tuner reads them whenever it decides what it is (making a tuner, saving it, searching), so the block
    spans the whole run.
    """
    before = {name: os.environ.get(name) for name in KERAS_TUNER_VARIABLES}
    for name in KERAS_TUNER_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(role.environment() if role is not None else {})
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _seconds(value: float) -> str:
    """A timeout as its flag takes it: a whole number of seconds."""
    if not float(value).is_integer():
        raise ValueError(f"a timeout of {value!r} seconds: the flags take whole seconds")
    return str(int(value))


def from_flags(role: str, *, bind: str | None = None, chief: str | None = None, worker_id: str | None = None,
               worker_timeout: float | None = None, chief_timeout: float | None = None) -> Role:
    """The Role that `hpstudy run --role ...` flags describe, or an HpstudyError naming the flag that is wrong."""
    options.choice(role, "--role", options.ROLES)                 # the flags' own rules first, as the parser's
    worker_timeout = options.positive(worker_timeout, "--worker-timeout")
    chief_timeout = options.positive(chief_timeout, "--chief-timeout")
    if role == CHIEF:
        if chief or worker_id or chief_timeout is not None:
            raise HpstudyError("--chief, --worker-id and --chief-timeout are for --role worker; a chief takes "
                               "--bind")
        if worker_timeout is not None and worker_timeout < MIN_WORKER_TIMEOUT:
            raise HpstudyError(f"--worker-timeout {worker_timeout:g}: at least {MIN_WORKER_TIMEOUT} seconds "
                               f"(workers beat every {HEARTBEAT_SECONDS:g} s)")
        host, port = parse_address(bind or f"127.0.0.1:{DEFAULT_PORT}", "--bind")
        return Role(CHIEF, host, port, worker_timeout=worker_timeout or DEFAULT_WORKER_TIMEOUT)
    if not chief:
        raise HpstudyError("--role worker needs --chief HOST:PORT, where the chief listens")
    if bind:
        raise HpstudyError("--bind is for --role chief; a worker takes --chief HOST:PORT")
    if worker_timeout is not None:
        raise HpstudyError("--worker-timeout is for --role chief (or --workers), which decides when a worker is "
                           "silent")
    host, port = parse_address(chief, "--chief")
    worker_id = worker_id or f"{socket.gethostname()}-{os.environ.get('SLURM_PROCID', '0')}"
    if CHIEF in worker_id:
        raise HpstudyError(f"--worker-id {worker_id!r}: a worker's id must be non-empty and must not contain "
                           f"'{CHIEF}'")
    return Role(WORKER, host, port, worker_id=worker_id, chief_timeout=chief_timeout or DEFAULT_CHIEF_TIMEOUT)


def parse_address(text: str, flag: str) -> tuple[str, int]:
    """HOST:PORT (or HOST alone, for the default port) -> (host, port); a one-line error naming `flag`."""
    host, _, port = text.rpartition(":") if ":" in text else (text, "", str(DEFAULT_PORT))
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise HpstudyError(f"{flag} {text}: expected HOST:PORT, a port in 1-65535, like 127.0.0.1:{DEFAULT_PORT}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine's loopback (reachable from this machine only)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (for a chief on this machine)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]
