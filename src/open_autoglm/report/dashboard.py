"""`autoglm dashboard`: optuna-dashboard on the run's study storage, the live view of a running search.

optuna-dashboard has no login: any page a browser opens could call its API. So its WSGI app is served behind
`DashboardGuard`, which answers only requests whose `Host` names this server (a DNS-rebinding page sends its own
domain) and, unless writes are allowed, only GET and HEAD (its API deletes and renames studies, and tells trials).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from wsgiref.simple_server import WSGIServer, make_server

from optuna.storages import BaseStorage

from open_autoglm.report.info import study_storage
from open_autoglm.run_folder import RunFolder

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
READ_METHODS = frozenset({"GET", "HEAD"})
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})
logger = logging.getLogger(__name__)


def dashboard_storage(run_dir: Path) -> str | BaseStorage:
    """The storage `tune` keeps the run's study in; an error that says so when the run has none."""
    run_dir = Path(run_dir)
    folder = RunFolder(run_dir)
    if not folder.config.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run folder: it has no {folder.config.name}")
    storage = study_storage(run_dir)
    if storage is None:
        raise FileNotFoundError(
            f"{run_dir} has no study (no {folder.study_db.name} or {folder.study_journal.name}): "
            "`autoglm tune` makes one, "
            "`autoglm train` does not; `autoglm report` shows a train run"
        )
    return storage


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server on this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(bind_host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The names a request's Host may give: the loopback names, the bound host, and `extra`.

    The loopback names are always safe to accept: a rebinding page cannot make a browser send them. A wildcard
    bind (0.0.0.0, ::) is also reached by this machine's name; other names and addresses come from `extra`.
    """
    names = {*LOOPBACK_NAMES, bind_host, *extra}
    if bind_host in WILDCARD_HOSTS:
        names.add(socket.gethostname())
    return frozenset(_normalised(name) for name in names if name)


def exposure_warning(bind_host: str, allow_write: bool) -> str | None:
    """What to tell the operator when the dashboard is reachable from other machines (None on loopback)."""
    if is_loopback(bind_host):
        return None
    what = "read and change (--allow-write)" if allow_write else "read"
    return (
        f"the dashboard listens on {bind_host or 'every address'} beyond this machine and has no login: "
        f"anyone who can reach it can {what} the study. Bind 127.0.0.1 and use an SSH tunnel unless the "
        "network is trusted."
    )


@dataclass(frozen=True)
class DashboardGuard:
    """WSGI middleware: refuse requests for another Host (400), and writes unless allowed (405).

    Allowed writes must also come from a page of this server when the browser says where it came from
    (`Origin`), so that another site cannot post to it (CSRF).
    """

    app: WSGIApplication
    hosts: frozenset[str]
    allow_write: bool = False

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        host = _host_of(environ.get("HTTP_HOST", ""))
        if host not in self.hosts:
            return _refuse(
                start_response,
                "400 Bad Request",
                f"Host {environ.get('HTTP_HOST', '(none)')!r} is not this dashboard's; allowed: "
                f"{', '.join(sorted(self.hosts))} (autoglm dashboard --allow-host NAME adds one)",
            )
        if environ.get("REQUEST_METHOD", "GET") in READ_METHODS:
            return self.app(environ, start_response)
        if not self.allow_write:
            return _refuse(
                start_response,
                "405 Method Not Allowed",
                "the dashboard is read-only; start it with --allow-write to change studies",
                [("Allow", "GET, HEAD")],
            )
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and _host_of(urlsplit(origin).netloc) not in self.hosts:
            return _refuse(
                start_response, "403 Forbidden", f"a write from another site ({origin}) is refused"
            )
        return self.app(environ, start_response)


def build_dashboard_app(
    run_dir: Path, bind_host: str, allow_write: bool = False, extra_hosts: Iterable[str] = ()
) -> DashboardGuard:
    """optuna-dashboard's WSGI app on the run's study, behind the guard."""
    import optuna_dashboard

    app = optuna_dashboard.wsgi(dashboard_storage(run_dir))
    return DashboardGuard(app, allowed_hosts(bind_host, extra_hosts), allow_write)


def make_dashboard_server(
    run_dir: Path,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    allow_write: bool = False,
    extra_hosts: Iterable[str] = (),
) -> WSGIServer:
    """A bound server for the guarded dashboard (port 0 picks a free one); `serve_forever()` runs it."""
    app = build_dashboard_app(run_dir, host, allow_write, extra_hosts)
    server_class = _ThreadingWSGIServerV6 if ":" in host else _ThreadingWSGIServer
    return make_server(host, port, app, server_class=server_class)


def serve_dashboard(
    run_dir: Path,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    allow_write: bool = False,
    extra_hosts: Iterable[str] = (),
) -> None:
    """Serve the guarded optuna-dashboard on the run's study until interrupted (Ctrl-C)."""
    warning = exposure_warning(host, allow_write)
    if warning:
        logger.warning(warning)
    server = make_dashboard_server(run_dir, host, port, allow_write=allow_write, extra_hosts=extra_hosts)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """One thread per request, as optuna-dashboard's own command serves: its page makes several at once."""

    daemon_threads = True


class _ThreadingWSGIServerV6(_ThreadingWSGIServer):
    address_family = socket.AF_INET6


def _host_of(netloc: str) -> str | None:
    """The host name of a Host header or URL authority ("[::1]:8080" → "::1"); None when it is malformed."""
    try:
        host = urlsplit(f"//{netloc}").hostname
    except ValueError:
        return None
    return _normalised(host) if host else None


def _normalised(name: str) -> str:
    return name.strip("[]").rstrip(".").lower()


def _refuse(
    start_response: Callable[..., Any],
    status: str,
    message: str,
    headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    body = (message + "\n").encode()
    start_response(
        status,
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))), *(headers or [])],
    )
    return [body]
