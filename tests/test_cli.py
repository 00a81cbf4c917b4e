"""End-to-end tests of the ``crm`` command: the installed console script run as subprocesses,
all on one embedded data directory, as an operator would use it.

Deadlines below only keep a broken build from hanging the suite; nothing is timed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app.db import migrate
from app.db.embedded import EmbeddedPostgres
from app.db.scratch import plain_dsn

CRM = Path(sys.executable).parent / "crm"
REPO = Path(__file__).resolve().parents[1]
COMMAND_TIMEOUT = 120  # seconds; a one-off command may have to initdb and migrate
READY_TIMEOUT = 60
STOP_TIMEOUT = 30


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Crm:
    """The ``crm`` command bound to one data directory."""

    data_dir: Path
    env: dict[str, str]
    # What one test leaves for a later one (each falls back to making its own).
    state: dict[str, str] = field(default_factory=dict)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own console script
            [str(CRM), *args],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            env=self.env,
            cwd=self.data_dir,
            check=False,
        )

    def run_json(self, *args: str) -> dict[str, Any]:
        result = self.run(*args, "--json")
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        assert isinstance(data, dict)
        return data

    def database_running(self) -> bool:
        return EmbeddedPostgres(self.data_dir).is_running()

    def admin_key(self) -> tuple[str, str]:
        """(workspace id, admin key) of a workspace made by an earlier test, or a new one."""
        if "workspace_id" not in self.state:
            created = self.run_json("workspace", "create", "Made for this test")
            self.state["workspace_id"] = str(created["workspace_id"])
            self.state["api_key"] = str(created["api_key"])
        return self.state["workspace_id"], self.state["api_key"]


@pytest.fixture(scope="module")
def crm() -> Iterator[Crm]:
    data_dir = Path(tempfile.mkdtemp(prefix="crm-cli-", dir="/tmp"))
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("CRM_") and key != "PROMETHEUS_MULTIPROC_DIR"
    }
    env.update(CRM_DATA_DIR=str(data_dir), CRM_LOG_FORMAT="text")
    try:
        yield Crm(data_dir=data_dir, env=env)
    finally:
        server = EmbeddedPostgres(data_dir)
        try:
            server.stop()  # a no-op unless a failed test left it running
        finally:
            socket_dir = server.layout.socket_dir
            if not socket_dir.is_relative_to(data_dir):
                shutil.rmtree(socket_dir, ignore_errors=True)
            shutil.rmtree(data_dir, ignore_errors=True)


def assert_one_error_line(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0]
    assert result.stdout == ""
    return lines[0]


# -- crm serve -------------------------------------------------------------------------------
@dataclass
class Served:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"crm serve exited with {self.process.returncode}:\n{self.output()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return
            if time.monotonic() > deadline:
                pytest.fail(f"crm serve not ready within {READY_TIMEOUT}s:\n{self.output()}")
            time.sleep(0.25)

    def get(self, path: str, key: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.get(f"{self.url}{path}", headers=headers, timeout=30)

    def stop(self, signum: signal.Signals, *, whole_group: bool = False) -> int:
        """Signal the service (or, like Ctrl-C in a terminal, its whole process group)."""
        if whole_group:
            os.killpg(self.process.pid, signum)
        else:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"crm serve did not stop on {signum.name}:\n{self.output()}")


@contextlib.contextmanager
def serving(crm: Crm, *args: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    port = free_port()
    log = crm.data_dir / f"serve-{port}.log"
    with log.open("wb") as sink:  # a file, not a pipe nobody reads that could fill up
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [str(CRM), "serve", "--port", str(port), *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**crm.env, **(env or {})},
            cwd=crm.data_dir,
            start_new_session=True,  # its own process group: workers included in cleanup
        )
    served = Served(process=process, url=f"http://127.0.0.1:{port}", log=log)
    try:
        served.wait_ready()
        yield served
    finally:
        # Whatever happened, leave no service or worker behind (the database is stopped by
        # the module fixture if a test failed before stopping the service).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_TIMEOUT)


# -- one-off commands ------------------------------------------------------------------------
def test_migrate_on_a_fresh_directory_reports_the_head_revision(crm: Crm) -> None:
    assert not (crm.data_dir / "pg" / "PG_VERSION").exists()
    expected = f"database schema at {migrate.head_revision()}"

    first = crm.run("migrate")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == expected
    assert "Running upgrade" in first.stderr  # its log says which migrations ran
    assert not crm.database_running()

    again = crm.run("migrate")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == expected
    assert "Traceback" not in again.stderr
    assert not crm.database_running()


def test_workspace_create_prints_the_workspace_and_an_admin_key(crm: Crm) -> None:
    created = crm.run_json("workspace", "create", "Acme")

    assert uuid.UUID(created["workspace_id"])
    assert created["name"] == "Acme"
    assert str(created["api_key"]).startswith("crm_")
    assert created["scopes"] == ["admin"]
    # The embedded server the command started for itself is stopped again.
    assert not crm.database_running()
    crm.state.setdefault("workspace_id", str(created["workspace_id"]))
    crm.state.setdefault("api_key", str(created["api_key"]))


def test_workspace_create_prints_text_without_json(crm: Crm) -> None:
    result = crm.run("workspace", "create", "Plain")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("workspace ")
    assert lines[0].endswith("(Plain)")
    assert "admin API key (shown once): crm_" in lines[1]


def test_apikey_create_issues_a_key_with_the_scopes_asked_for(crm: Crm) -> None:
    workspace_id, admin_key = crm.admin_key()
    created = crm.run_json(
        "apikey", "create", "--workspace", workspace_id,
        "--scope", "contacts:read", "--scope", "contacts:write",
    )  # fmt: skip

    assert created["workspace_id"] == workspace_id
    assert str(created["api_key"]).startswith("crm_")
    assert created["api_key"] != admin_key
    assert sorted(created["scopes"]) == ["contacts:read", "contacts:write"]
    assert not crm.database_running()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        pytest.param(
            ["apikey", "create", "--workspace", "{workspace}", "--scope", "nope"],
            ["scopes"],
            id="unknown-scope",
        ),
        pytest.param(
            ["apikey", "create", "--workspace", "not-a-uuid", "--scope", "contacts:read"],
            ["'not-a-uuid' is not a workspace id"],
            id="workspace-not-a-uuid",
        ),
        pytest.param(
            ["apikey", "create", "--workspace", "{random}", "--scope", "contacts:read"],
            ["no workspace {random}"],
            id="unknown-workspace",
        ),
        pytest.param(["workspace", "create", ""], ["name"], id="empty-workspace-name"),
        pytest.param(["workspace", "create", "   "], ["name"], id="blank-workspace-name"),
    ],
)
def test_command_errors_are_one_line_without_a_traceback(
    crm: Crm, args: list[str], fragments: list[str]
) -> None:
    workspace_id, _ = crm.admin_key()
    values = {"workspace": workspace_id, "random": str(uuid.uuid4())}

    result = crm.run(*(arg.format(**values) for arg in args))

    assert_one_error_line(result, *(fragment.format(**values) for fragment in fragments))
    assert not crm.database_running()


def test_export_schema_matches_the_committed_files(crm: Crm, tmp_path: Path) -> None:
    out = tmp_path / "schema"
    result = crm.run("export-schema", "--out", str(out))

    assert result.returncode == 0, result.stderr
    for name in ("openapi.json", "schema.graphql"):
        assert (out / name).read_bytes() == (REPO / "openapi" / name).read_bytes(), (
            f"{name} differs from openapi/{name}: run 'make schema'"
        )


# -- the service -----------------------------------------------------------------------------
def test_serve_refuses_a_second_serve_and_shares_its_database_with_commands(crm: Crm) -> None:
    with serving(crm) as served:
        second = crm.run("serve", "--port", str(free_port()))
        assert_one_error_line(second, "already running", str(crm.data_dir))

        # A one-off command uses the running service's database, and leaves it running.
        created = crm.run_json("workspace", "create", "While serving")
        assert crm.database_running()
        response = served.get("/v1/workspace", key=str(created["api_key"]))
        assert response.status_code == 200, response.text
        assert response.json()["id"] == created["workspace_id"]
        assert served.get("/readyz").status_code == 200

        assert served.stop(signal.SIGINT) == 0, served.output()
    assert not crm.database_running()
    assert "Traceback" not in served.output()
    crm.state["workspace_id"] = str(created["workspace_id"])
    crm.state["api_key"] = str(created["api_key"])


def test_data_survives_a_restart_and_sigterm_stops_cleanly(crm: Crm) -> None:
    workspace_id, key = crm.admin_key()
    with serving(crm) as served:
        response = served.get("/v1/workspace", key=key)
        assert response.status_code == 200, response.text
        assert response.json()["id"] == workspace_id

        assert served.stop(signal.SIGTERM) == 0, served.output()
    assert not crm.database_running()
    assert "Traceback" not in served.output()


def test_serve_with_two_workers(crm: Crm) -> None:
    _, key = crm.admin_key()
    scratch = crm.data_dir / "scratch"
    scratch.mkdir()
    # TMPDIR: to see that the service removes the metrics folder it makes for its workers.
    with serving(crm, "--workers", "2", env={"TMPDIR": str(scratch)}) as served:
        assert served.get("/readyz").status_code == 200
        metrics = served.get("/metrics")
        assert metrics.status_code == 200
        assert "crm_db_pool_size" in metrics.text
        for _ in range(4):
            assert served.get("/v1/workspace", key=key).status_code == 200
        assert list(scratch.iterdir()) != []

        # Ctrl-C in a terminal signals the whole foreground process group.
        assert served.stop(signal.SIGINT, whole_group=True) == 0, served.output()
    assert not crm.database_running()
    assert list(scratch.iterdir()) == []
    assert "Traceback" not in served.output()


def test_serve_ignores_a_folder_named_app_in_its_working_directory(crm: Crm) -> None:
    # `crm serve` migrates through `python -m app.cli migrate`: the child must import this
    # package, not whatever `app` the directory it was started in holds.
    shadow = crm.data_dir / "app"
    shadow.mkdir()
    (shadow / "__init__.py").write_text('raise SystemExit("the wrong app package")\n')
    try:
        with serving(crm) as served:
            assert served.get("/readyz").status_code == 200
            assert served.stop(signal.SIGTERM) == 0, served.output()
        assert "the wrong app package" not in served.output()
    finally:
        shutil.rmtree(shadow)


def test_serve_stops_with_the_reason_when_the_database_cannot_be_migrated(crm: Crm) -> None:
    # Nothing listens on this port: `crm migrate`, which `crm serve` runs beside building the
    # application, fails, and the service does not start.
    unreachable = f"postgresql+asyncpg://crm@127.0.0.1:{free_port()}/crm"
    result = subprocess.run(  # noqa: S603 - our own console script
        [str(CRM), "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        env={**crm.env, "CRM_DATABASE_URL": unreachable},
        cwd=crm.data_dir,
        check=False,
    )

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2, result.stderr
    assert "cannot reach the database" in errors[0]
    assert errors[1] == "error: the database could not be migrated; see the error above"
    assert "Uvicorn running" not in result.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("nope",), "No such command"),
        (("serve", "--port", "0"), "--port"),
        (("apikey", "create", "--workspace", "x"), "--scope"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    crm: Crm, args: tuple[str, ...], fragment: str
) -> None:
    result = crm.run(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert fragment in lines[0]
    assert "--help" in lines[0]


def test_demo_loads_a_workspace_and_prints_its_key_and_counts(crm: Crm) -> None:
    loaded = crm.run_json("demo", "--contacts", "40")

    assert uuid.UUID(loaded["workspace_id"])
    assert loaded["name"] == "Demo: Siam & Saigon Retail"
    assert str(loaded["api_key"]).startswith("crm_")
    assert loaded["scopes"] == ["admin"]
    counts = loaded["counts"]
    assert counts["contacts"] == 40
    assert counts["accounts"] >= 25
    assert counts["relationships"] > 0
    assert not crm.database_running()


def test_alembic_check_compares_models_with_migrations_on_a_fresh_directory(
    crm: Crm, tmp_path: Path
) -> None:
    # A new data directory holds an empty database: the check must not depend on it being
    # migrated, and must leave nothing behind.
    data_dir = tmp_path / "data"
    env = {**crm.env, "CRM_DATA_DIR": str(data_dir)}
    result = subprocess.run(  # noqa: S603 - the project's own alembic
        [str(CRM.parent / "alembic"), "check"],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        env=env,
        cwd=migrate.PROJECT_ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "No new upgrade operations detected" in result.stdout + result.stderr
    server = EmbeddedPostgres(data_dir)
    assert not server.is_running()
    server.ensure_running()
    try:
        names = asyncio.run(_database_names(server.superuser_dsn()))
    finally:
        server.stop()
    assert "crm" in names
    assert not [name for name in names if name.startswith("crm_check")]


async def _database_names(url: str) -> list[str]:
    connection = await asyncpg.connect(plain_dsn(url))
    try:
        return [row["datname"] for row in await connection.fetch("SELECT datname FROM pg_database")]
    finally:
        await connection.close()


def test_worker_once_runs_every_registered_job_and_names_unknown_ones(crm: Crm) -> None:
    import app.modules  # noqa: F401  (the jobs register when their modules are imported)
    from app.jobs.registry import periodic_jobs

    ran = crm.run_json("worker", "--once")

    assert set(ran) == {job.name for job in periodic_jobs()}
    assert all(outcome["skipped_workspaces"] == 0 for outcome in ran.values())
    unknown = crm.run("worker", "--once", "--job", "no-such-job")
    assert unknown.returncode == 1
    assert unknown.stderr.strip().startswith("error: no periodic job named 'no-such-job'")
    assert not crm.database_running()


def test_loyalty_sweep_runs_the_sweep_and_changes_nothing_twice(crm: Crm) -> None:
    first = crm.run_json("loyalty", "sweep")
    assert first == {"changed": 0, "skipped_workspaces": 0}
    plain = crm.run("loyalty", "sweep")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.startswith("loyalty sweep: 0 account(s) changed")
    assert not crm.database_running()
