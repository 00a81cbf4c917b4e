"""The ``crm`` command: serve, migrate, workspaces, API keys, periodic jobs, schema export,
demo data."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from app.config import Settings, get_settings

if TYPE_CHECKING:
    from app.db.embedded import EmbeddedPostgres
    from app.kit.errors import CRMError

cli = typer.Typer(
    help="A headless CRM service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
workspace_cli = typer.Typer(help="Manage workspaces.", no_args_is_help=True)
apikey_cli = typer.Typer(help="Manage API keys.", no_args_is_help=True)
loyalty_cli = typer.Typer(help="Loyalty programmes.", no_args_is_help=True)
cli.add_typer(workspace_cli, name="workspace")
cli.add_typer(apikey_cli, name="apikey")
cli.add_typer(loyalty_cli, name="loyalty")

R = TypeVar("R")


def fail(message: str) -> typer.Exit:
    # One line, whatever the message: a multi-line exception text is joined up.
    line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    typer.echo(f"error: {line}", err=True)
    return typer.Exit(code=1)


def _describe(error: CRMError) -> str:
    if not error.errors:
        return error.detail
    return "invalid input: " + "; ".join(f"{e.field}: {e.message}" for e in error.errors)


def friendly_errors(command: Callable[..., R]) -> Callable[..., R]:
    """Every failure is one line on stderr and a non-zero exit, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> R:
        from pydantic import ValidationError

        from app.db.embedded import EmbeddedPostgresError
        from app.kit.errors import CRMError
        from app.kit.problems import validation_problem

        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except CRMError as exc:
            raise fail(_describe(exc)) from None
        except ValidationError as exc:  # settings, or a model validated inside a service
            raise fail(_describe(validation_problem(exc.errors()))) from None
        except EmbeddedPostgresError as exc:
            raise fail(str(exc)) from None
        except (OSError, ConnectionError) as exc:
            raise fail(f"cannot reach the database: {exc}") from None
        except Exception as exc:
            from sqlalchemy.exc import SQLAlchemyError

            if isinstance(exc, SQLAlchemyError):
                reason = str(getattr(exc, "orig", exc)).splitlines()[0]
                raise fail(f"database error: {reason}") from None
            raise fail(f"{exc.__class__.__name__}: {exc}") from None

    return wrapper


@contextlib.contextmanager
def database_target(settings: Settings, *, migrate: bool) -> Iterator[Any]:
    """The database for a one-off command; an embedded server started for it is stopped
    afterwards unless a ``crm serve`` has taken it over meanwhile."""
    from app.db.bootstrap import migrate_to_head, resolve_target

    target = resolve_target(settings)
    try:
        if migrate:
            migrate_to_head(target)
        yield target
    finally:
        if target.embedded is not None and target.embedded.started_here:
            target.embedded.stop(only_if_unserved=True)


def run_with_session(settings: Settings, work: Callable[[Any], Coroutine[Any, Any, R]]) -> R:
    from app.db.session import Database

    with database_target(settings, migrate=settings.migrate_on_start) as target:

        async def main() -> R:
            database = Database.connect(target.app_url, settings)
            try:
                async with database.sessionmaker() as session, session.begin():
                    return await work(session)
            finally:
                await database.dispose()

        return asyncio.run(main())


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _prepare_database(
    settings: Settings, server: EmbeddedPostgres | None, environment: dict[str, str]
) -> None:
    """Start the embedded server if there is one, then migrate when the settings ask to.

    The thread running this holds the interpreter lock as little as it can: the main thread
    needs it to import the application, and every system call made here would wait for it
    again. initdb and pg_ctl are PostgreSQL's programs, and the migrations run as
    ``crm migrate`` in a process of its own, on another core.
    """
    if server is not None:
        server.ensure_running()
    if not settings.migrate_on_start:
        from app.db.bootstrap import resolve_target

        resolve_target(settings)  # the embedded server's database and role
        return
    migrating = subprocess.run(
        # -P: the working directory is not put on the path, where a folder named `app` would
        # shadow this package.
        [sys.executable, "-P", "-m", "app.cli", "migrate"],
        env=environment,
        stdout=subprocess.DEVNULL,
        check=False,
    )
    if migrating.returncode != 0:
        # `crm migrate` has said why on stderr, which it shares with this process.
        raise fail("the database could not be migrated; see the error above")


@cli.command()
@friendly_errors
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
) -> None:
    """Serve the API (embedded PostgreSQL when CRM_DATABASE_URL is unset)."""
    from app.db.embedded import AlreadyServing, EmbeddedPostgres
    from app.kit.logging import configure_logging

    # SIGTERM (docker stop, systemd) stops the service the way Ctrl-C does. Unhandled, it
    # would kill the process once uvicorn has re-raised it after its graceful shutdown, before
    # the embedded database below is stopped. uvicorn.run swallows the KeyboardInterrupt.
    signal.signal(signal.SIGTERM, _interrupt)
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    server: EmbeddedPostgres | None = None
    if settings.database_url is None:
        server = EmbeddedPostgres(settings.data_dir)
        try:
            server.claim_serving()
        except AlreadyServing as exc:
            raise fail(str(exc)) from None
    # What `crm migrate` below is to see: the configuration as given, not the app's URL set
    # next.
    environment = dict(os.environ)
    # Worker processes read their settings from the environment, and so does the application
    # built here: not the settings read above, which would make it prepare (and migrate) the
    # embedded database a second time.
    os.environ["CRM_DATABASE_URL"] = (
        server.app_dsn(settings.app_role) if server is not None else str(settings.database_url)
    )
    get_settings.cache_clear()
    # The database is made ready on a thread of its own while this process imports and builds
    # the application, seconds of CPU that need no database.
    background = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="database")
    preparing = background.submit(_prepare_database, settings, server, environment)
    metrics_dir: str | None = None
    try:
        import uvicorn

        application = None
        if workers == 1:
            from app.main import build_app

            application = build_app()
        preparing.result()
        if workers > 1:
            metrics_dir = tempfile.mkdtemp(prefix="crm-metrics-")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        else:
            from app.main import tune_garbage_collector

            tune_garbage_collector()
        uvicorn.run(
            application or "app.main:serve_app",
            factory=application is None,
            host=host,
            port=port,
            workers=workers,
            log_config=None,
            access_log=False,
            proxy_headers=True,
            timeout_graceful_shutdown=20,
        )
    finally:
        # After a failed import or build the server may still be starting: it is stopped
        # below once that is over.
        background.shutdown(wait=True)
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        if server is not None:
            server.stop()
            server.release_serving()


@cli.command()
@friendly_errors
def migrate() -> None:
    """Migrate the database schema to the latest revision."""
    from app.db import migrate as migrations
    from app.kit.logging import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)  # which migrations ran

    with database_target(settings, migrate=True):
        typer.echo(f"database schema at {migrations.head_revision()}")


def _emit(data: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        for line in lines:
            typer.echo(line)


@workspace_cli.command("create")
@friendly_errors
def workspace_create(
    name: Annotated[str, typer.Argument(help="Display name of the workspace.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a workspace and print its id and an admin API key."""
    from app.workspace.service import workspace as workspace_service

    async def work(session: Any) -> dict[str, Any]:
        created = await workspace_service.create(session, name=name)
        return {
            "workspace_id": str(created.workspace.id),
            "name": created.workspace.name,
            "api_key_id": str(created.admin_key.record.id),
            "api_key": created.admin_key.token,
            "scopes": created.admin_key.record.scopes,
        }

    result = run_with_session(get_settings(), work)
    _emit(result, as_json, [
        f"workspace {result['workspace_id']} ({result['name']})",
        f"admin API key (shown once): {result['api_key']}",
    ])  # fmt: skip


@apikey_cli.command("create")
@friendly_errors
def apikey_create(
    workspace: Annotated[str, typer.Option("--workspace", help="Workspace id.")],
    scope: Annotated[list[str], typer.Option("--scope", help="A scope; repeat for several.")],
    name: Annotated[str, typer.Option(help="A label for the key.")] = "cli",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Issue an API key with the given scopes in a workspace."""
    from app.api_key import schemas
    from app.api_key.service import api_key as api_key_service
    from app.db.session import bind_workspace
    from app.kit.schemas import parse_input
    from app.workspace.repository import WorkspaceRepository

    try:
        workspace_id = uuid.UUID(workspace)
    except ValueError:
        raise fail(f"{workspace!r} is not a workspace id") from None
    create = parse_input(schemas.ApiKeyCreate, {"name": name, "scopes": scope})

    async def work(session: Any) -> dict[str, Any]:
        await bind_workspace(session, workspace_id)
        if await WorkspaceRepository(session).get(workspace_id) is None:
            raise fail(f"no workspace {workspace_id}")
        created = await api_key_service.issue(
            session, workspace_id=workspace_id, name=create.name,
            scopes=[item.value for item in create.scopes],
        )  # fmt: skip
        return {
            "api_key_id": str(created.record.id),
            "api_key": created.token,
            "scopes": created.record.scopes,
            "workspace_id": str(workspace_id),
        }

    result = run_with_session(get_settings(), work)
    _emit(result, as_json, [f"API key (shown once): {result['api_key']}"])


@cli.command()
@friendly_errors
def demo(
    contacts: Annotated[int, typer.Option(min=2, max=10000, help="Contacts to create.")] = 300,
    seed: Annotated[int, typer.Option(help="The same seed gives the same data.")] = 42,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a demo workspace (Thai and Vietnamese customers) and print its admin API key."""
    from app.demo import create_demo_workspace

    async def work(session: Any) -> dict[str, Any]:
        loaded = await create_demo_workspace(session, contacts=contacts, seed=seed)
        created, counts = loaded.created, loaded.counts
        return {
            "workspace_id": str(created.workspace.id),
            "name": created.workspace.name,
            "api_key_id": str(created.admin_key.record.id),
            "api_key": created.admin_key.token,
            "scopes": created.admin_key.record.scopes,
            "counts": {
                "accounts": counts.accounts,
                "contacts": counts.contacts,
                "relationships": counts.relationships,
                "interactions": counts.interactions,
                "purchases": counts.purchases,
                "refunds": counts.refunds,
                "loyalty_members": counts.loyalty_members,
                "redemptions": counts.redemptions,
                "cases": counts.cases,
            },
        }

    result = run_with_session(get_settings(), work)
    counts = result["counts"]
    _emit(result, as_json, [
        f"workspace {result['workspace_id']} ({result['name']})",
        f"loaded {counts['accounts']} accounts, {counts['contacts']} contacts, "
        f"{counts['relationships']} relationships, {counts['interactions']} interactions, "
        f"{counts['purchases']} purchases, {counts['refunds']} refunds and "
        f"{counts['cases']} cases",
        f"{counts['loyalty_members']} loyalty members, {counts['redemptions']} redemptions",
        f"admin API key (shown once): {result['api_key']}",
    ])  # fmt: skip


def run_jobs(settings: Settings, names: list[str], *, forever: bool) -> dict[str, Any]:
    """Run the named periodic jobs (all when empty) once, or on their schedules until
    interrupted; what each pass changed, by job."""
    from app import modules  # noqa: F401  (the jobs register when their modules are imported)
    from app.db.session import Database
    from app.jobs.registry import periodic_job, periodic_jobs
    from app.jobs.runner import run_forever, run_once

    try:
        jobs = [periodic_job(name) for name in names] if names else periodic_jobs()
    except LookupError as exc:
        raise fail(str(exc.args[0])) from None
    with database_target(settings, migrate=settings.migrate_on_start) as target:

        async def main() -> dict[str, Any]:
            database = Database.connect(target.app_url, settings)
            try:
                if forever:
                    await asyncio.gather(*(run_forever(database, job) for job in jobs))
                reports = [await run_once(database, job) for job in jobs]
                return {
                    report.job: {"changed": report.total, "skipped_workspaces": len(report.skipped)}
                    for report in reports
                }
            finally:
                await database.dispose()

        return asyncio.run(main())


@cli.command()
@friendly_errors
def worker(
    job: Annotated[
        list[str] | None, typer.Option("--job", help="Only this job (repeatable).")
    ] = None,
    once: Annotated[bool, typer.Option(help="One pass of each job, then exit.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (with --once).")] = False,
) -> None:
    """Run periodic jobs (loyalty sweeps, SLA clocks) outside the API processes.

    Safe beside service processes and other workers: each workspace is worked on by one
    process at a time. Serve with CRM_RUN_JOBS=false to leave the jobs to workers.
    """
    from app.kit.logging import configure_logging

    signal.signal(signal.SIGTERM, _interrupt)
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    result = run_jobs(settings, job or [], forever=not once)
    _emit(result, as_json, [
        f"{name}: changed {outcome['changed']}, skipped {outcome['skipped_workspaces']} "
        "workspace(s) busy elsewhere"
        for name, outcome in result.items()
    ] or ["no periodic jobs are registered"])  # fmt: skip


@loyalty_cli.command("sweep")
@friendly_errors
def loyalty_sweep(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Release due pending points, expire due lots and re-derive tiers, in every workspace.

    Idempotent and safe beside running services: a second run changes nothing.
    """
    from app.kit.logging import configure_logging
    from app.loyalty.tasks import SWEEP_JOB

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    outcome = run_jobs(settings, [SWEEP_JOB], forever=False)[SWEEP_JOB]
    _emit(outcome, as_json, [
        f"loyalty sweep: {outcome['changed']} account(s) changed, "
        f"{outcome['skipped_workspaces']} workspace(s) skipped (busy elsewhere)"
    ])  # fmt: skip


@cli.command("export-schema")
@friendly_errors
def export_schema(
    out: Annotated[Path, typer.Option(help="Folder to write into.")] = Path("openapi"),
) -> None:
    """Write openapi.json and schema.graphql from the code."""
    from app.graphql.schema import create_schema
    from app.main import create_app

    settings = get_settings()
    app = create_app(settings)
    out.mkdir(parents=True, exist_ok=True)
    spec = json.dumps(app.openapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    (out / "openapi.json").write_text(spec, encoding="utf-8")
    sdl = create_schema(settings).as_str() + "\n"
    (out / "schema.graphql").write_text(sdl, encoding="utf-8")
    typer.echo(f"wrote {out / 'openapi.json'} and {out / 'schema.graphql'}")


def main() -> None:
    # Typer bundles its own click; its exception classes are not re-exported publicly.
    from typer._click import exceptions as click_exceptions

    try:
        # Outside standalone mode typer returns a command's exit code instead of exiting.
        outcome = cli(standalone_mode=False)
    except click_exceptions.NoArgsIsHelpError as exc:
        typer.echo(exc.ctx.get_help() if exc.ctx is not None else "", err=True)
        sys.exit(2)
    except click_exceptions.UsageError as exc:
        # click's usage errors span several lines; keep to one, and point at --help.
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        typer.echo(f"error: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    sys.exit(outcome if isinstance(outcome, int) else 0)


if __name__ == "__main__":  # `crm serve` migrates through `python -m app.cli migrate`
    main()
