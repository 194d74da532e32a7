"""The live view's HTTP server: the standard library's ThreadingHTTPServer and three routes, each answered from
memory: `/` the page, `/state.json` every study's state, `/figure/<study>/<n>.png` a figure of the latest state.
Anything else is 404; GET and HEAD only."""
from __future__ import annotations

import json
import re
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from hpstudy.engine.search.distributed.roles import is_loopback
from hpstudy.errors import HpstudyError
from hpstudy.serve import page, watch
from hpstudy.text import exception_line

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
_FIGURE = re.compile(r"/figure/(\d{1,4})/(\d{1,4})\.png")
_SECURITY = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
             "Referrer-Policy": "no-referrer",
             "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                                        "img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'"}


class LiveServer(ThreadingHTTPServer):
    """The server of the live view of `watched` studies (watch.Watched), one thread per request."""

    daemon_threads = True

    def __init__(self, address: tuple, watched: list, family: int):
        self.address_family = family
        self.watched = watched
        self.loopback = is_loopback(address[0])
        self.page = page.page([w.layout.root.name for w in watched])
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        """Where the page is."""
        address, port = self.server_address[:2]
        host = address.decode() if isinstance(address, bytes) else address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"

    # No file is ever served by its name, so no URL (`..`, `%2e%2e`, an absolute path) reaches a file at all, inside
    # the folders or out. Bound to loopback, the server answers only requests that name a loopback host (a web page
    # elsewhere cannot reach it through a DNS name that points here).
    def answer(self, target: str, host: str | None) -> tuple[int, str, bytes]:
        """(status, content type, body) of a GET of `target` (the request's path) with Host header `host`."""
        if self.loopback and host is not None and not is_loopback(_hostname(host)):
            return 403, "text/plain; charset=utf-8", b"hpstudy serve answers requests for this machine only\n"
        path = urlsplit(target).path
        if path == "/":
            return 200, "text/html; charset=utf-8", self.page
        if path == "/state.json":
            return 200, "application/json", self.state()
        figure = _FIGURE.fullmatch(path)
        if figure and int(figure[1]) < len(self.watched):
            png = self.watched[int(figure[1])].figure(int(figure[2]))
            if png:
                return 200, "image/png", png
        return 404, "text/plain; charset=utf-8", b"not found\n"

    def state(self) -> bytes:
        """Every study's state (watch.Watched.state_json) and the time of the answer, as JSON."""
        studies = ",".join(w.state_json() for w in self.watched)
        return f'{{"studies": [{studies}], "served": {json.dumps(time.time())}}}'.encode("utf-8")


def _hostname(host: str) -> str:
    """The host of a Host header, without its port (and the brackets of an IPv6 address)."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


class _Handler(BaseHTTPRequestHandler):
    server: LiveServer                # the server that made this handler
    server_version = "hpstudy-serve"
    sys_version = ""
    timeout = 30                      # a client that stops sending mid-request frees its thread

    def do_GET(self):
        """Answer a GET (see LiveServer.answer)."""
        self._answer(body=True)

    def do_HEAD(self):
        """Answer a HEAD: a GET's headers."""
        self._answer(body=False)

    def _answer(self, body: bool) -> None:
        status, kind, content = self.server.answer(self.path, self.headers.get("Host"))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(content)))
        for name, value in _SECURITY.items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(content)

    def log_message(self, format, *args):
        """Quiet: no line per request."""


def open_server(paths: list, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> LiveServer:
    """A server of the live view of results folders `paths`, listening (not yet answering: `serve_forever`).
    Each path is checked first; a port in use or a host that is not this machine's is one line. Any host but
    loopback is warned about on stderr."""
    if not paths:
        raise HpstudyError("hpstudy serve: give at least one results folder")
    watched = [watch.Watched(path, index) for index, path in enumerate(paths)]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        server = LiveServer((host, port), watched, family)
    except OSError as err:                        # in use, not this machine's address, a name that resolves to none
        reason = exception_line(err)
        raise HpstudyError(f"{host}:{port}: cannot listen there ({reason}); choose another --port or --host") from None
    if not server.loopback:
        print(f"warning: hpstudy serve listens on {server.url}; anyone who can reach it can read these studies (no "
              "password, no encryption), so use it only on a network you trust, or keep the default 127.0.0.1 and "
              "an SSH tunnel", file=sys.stderr, flush=True)
    return server


def serve(paths: list, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, stream=None) -> None:
    """Serve the live view of `paths` until Ctrl-C, which ends it quietly; says where on `stream` (stdout)."""
    server = open_server(paths, host=host, port=port)
    # Ctrl-C shuts the server down from its handler rather than raising KeyboardInterrupt where the main thread
    # happens to be: in a process that has loaded Keras that is sometimes a garbage-collection callback, where
    # Python ignores it and the server goes on (seen under load). shutdown() waits for the loop, so a thread calls it.
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT,
                                 lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    try:
        count = f"{len(paths)} {'study' if len(paths) == 1 else 'studies'}"
        print(f"hpstudy serve: {count} at {server.url} (Ctrl-C stops it)", file=stream or sys.stdout, flush=True)
        server.serve_forever()
    except KeyboardInterrupt:               # serve called off the main thread, or before the handler was set
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        server.server_close()
