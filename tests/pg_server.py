"""A real, throwaway PostgreSQL server for the tests.

`start_server(workdir)` returns a running `PgServer` whose `url` is a superuser URL, or raises
`PgUnavailable` saying why none could start. It tries, in order:

1. ``NEWSBOT_TEST_POSTGRES_URL``: an existing server the caller provides (never stopped here);
2. the ``pgserver`` wheel (a PostgreSQL build inside the package; works as root: it runs the
   server as a dedicated system user), in a data directory under workdir, on a Unix socket;
3. a system PostgreSQL (``/usr/lib/postgresql/*/bin``): initdb and pg_ctl, run as the
   ``postgres`` user when we are root (initdb refuses root), listening on 127.0.0.1 on a
   free port, with its socket in workdir.

`PgServer.stop()` stops whatever was started. Run ``python -m tests.pg_server`` to see which
way works on this machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

__all__ = ["PgServer", "PgUnavailable", "database_url", "schema_url", "start_server"]

ENV_URL = "NEWSBOT_TEST_POSTGRES_URL"
_START_TIMEOUT_S = 60


class PgUnavailable(RuntimeError):
    """No PostgreSQL server could be started; the message says why, for each way tried."""


@dataclass
class PgServer:
    url: str
    how: str
    _stop: Callable[[], None] = field(default=lambda: None, repr=False)

    def stop(self) -> None:
        stop, self._stop = self._stop, lambda: None
        stop()


def database_url(url: str, database: str) -> str:
    """url with its database name replaced."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(database)))


def schema_url(url: str, schema: str) -> str:
    """url with search_path set to schema (asyncpg passes unknown query keys as settings)."""
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, f"search_path={quote(schema)}") if q)
    return urlunsplit(parts._replace(query=query))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _via_pgserver(workdir: Path) -> PgServer:
    pgdata = workdir / "pgserver-data"
    pgdata.mkdir(parents=True, exist_ok=True)
    # platformdirs (imported by pgserver) warns when XDG_RUNTIME_DIR is unset (CI,
    # containers); the tests turn warnings into errors, and this one is harmless.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from pgserver.postgres_server import get_server  # optional dev dependency
        except ImportError as exc:
            raise PgUnavailable(f"pgserver is not installed ({exc})") from exc
        try:
            server = get_server(pgdata, cleanup_mode="stop")
        except Exception as exc:
            raise PgUnavailable(f"pgserver could not start: {exc!r}") from exc
        url = server.get_uri()

    def stop() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server.cleanup()

    return PgServer(url=url, how="pgserver", _stop=stop)


def _system_bindir() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return candidates[0].parent if candidates else None


def _via_system(workdir: Path) -> PgServer:
    bindir = _system_bindir()
    if bindir is None:
        raise PgUnavailable("no system PostgreSQL under /usr/lib/postgresql")
    base = workdir / "system-pg"
    pgdata, sockets = base / "data", base / "sock"
    sockets.mkdir(parents=True, exist_ok=True)
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            raise PgUnavailable("running as root without runuser; initdb refuses root")
        prefix = ["runuser", "-u", "postgres", "--"]
        # The postgres user must reach and own the directories.
        for path in (workdir, base):
            path.chmod(0o755)
        shutil.chown(base, "postgres")
        shutil.chown(sockets, "postgres")
    port = _free_port()

    def run(*args: str) -> None:
        result = subprocess.run(  # noqa: S603 - fixed binaries, arguments we build
            [*prefix, *args], capture_output=True, text=True, timeout=_START_TIMEOUT_S, check=False
        )
        if result.returncode != 0:
            raise PgUnavailable(f"{Path(args[0]).name} failed: {result.stderr.strip()[-500:]}")

    run(
        str(bindir / "initdb"),
        "-D",
        str(pgdata),
        "-U",
        "postgres",
        "--auth=trust",
        "--encoding=UTF8",
        "--no-sync",
    )
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(pgdata),
        "-o",
        options,
        "-w",
        "-l",
        str(base / "log"),
        "start",
    )

    def stop() -> None:
        with contextlib.suppress(PgUnavailable, subprocess.SubprocessError, OSError):
            run(str(bindir / "pg_ctl"), "-D", str(pgdata), "-m", "immediate", "-w", "stop")

    return PgServer(
        url=f"postgresql://postgres@127.0.0.1:{port}/postgres", how=f"system {bindir}", _stop=stop
    )


def start_server(workdir: Path | None = None) -> PgServer:
    """Start (or find) a server; raises PgUnavailable with every reason if none works.

    Without workdir, the server lives in a new directory directly under the system temp dir,
    removed by stop(). Not under pytest's basetemp: pytest resets /tmp/pytest-of-<user> to
    mode 0700 whenever another pytest run starts, and the server (running as another system
    user when we are root) would then lose its own data directory mid-run.
    """
    given = os.environ.get(ENV_URL, "").strip()
    if given:
        return PgServer(url=given, how=f"${ENV_URL}")
    owned = workdir is None
    base = Path(tempfile.mkdtemp(prefix="newsbot-pg-")) if workdir is None else workdir
    reasons: list[str] = []
    for way in (_via_pgserver, _via_system):
        try:
            server = way(base)
        except PgUnavailable as exc:
            reasons.append(str(exc))
            continue
        if owned:
            server = _removing(server, base)
        return server
    if owned:
        shutil.rmtree(base, ignore_errors=True)
    raise PgUnavailable("; ".join(reasons))


def _removing(server: PgServer, directory: Path) -> PgServer:
    """server, whose stop() also removes directory."""
    stop_server = server.stop

    def stop() -> None:
        try:
            stop_server()
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    return PgServer(url=server.url, how=server.how, _stop=stop)


if __name__ == "__main__":
    try:
        started = start_server()
    except PgUnavailable as exc:
        print(f"no PostgreSQL: {exc}")
        sys.exit(1)
    print(f"started via {started.how}: {started.url}")
    started.stop()
