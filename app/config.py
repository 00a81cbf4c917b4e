"""Service settings, read from the environment (prefix ``CRM_``) and nowhere else."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRM_", extra="ignore")

    # The service's own connections. Point it at a role that is neither superuser nor table
    # owner so that row-level security applies. Unset: an embedded server in data_dir.
    database_url: str | None = None
    # The role that owns the schema and runs migrations. Defaults to database_url.
    database_owner_url: str | None = None
    # The role the service connects as; migrations grant it access to every table.
    app_role: str = "crm_app"
    data_dir: Path = Path(".crm")

    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    # Fail fast when the pool or the server is unavailable: a request should get a 503
    # within seconds, not hang until a proxy times out.
    db_pool_timeout: float = Field(default=5.0, gt=0)
    db_connect_timeout: float = Field(default=3.0, gt=0)
    db_statement_timeout_ms: int = Field(default=30_000, ge=0)

    migrate_on_start: bool = True
    # Run periodic jobs (loyalty sweeps, SLA clocks) in this process. Turn off in API
    # processes when a separate `crm worker` runs them.
    run_jobs: bool = True
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    # FastAPI's native OpenTelemetry spans, for a deployment that configures a tracer
    # provider; off, no request pays for looking one up.
    otel_tracing: bool = False
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    default_phone_region: str = "TH"
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    idempotency_ttl_hours: int = Field(default=24, ge=1)
    # How long a verified API key stays cached in a worker. Revocation takes effect at once
    # in the worker that handled it and within this many seconds in the others.
    auth_cache_seconds: float = Field(default=10.0, ge=0)

    graphql_max_depth: int = Field(default=10, ge=1)
    graphql_max_aliases: int = Field(default=30, ge=1)
    graphql_max_cost: int = Field(default=50_000, ge=1)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("default_phone_region")
    @classmethod
    def _upper_region(cls, value: str) -> str:
        return value.upper()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
