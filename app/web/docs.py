"""API explorer pages (Swagger UI, ReDoc, GraphiQL) served from vendored assets.

The explorers' default pages pull their scripts, styles, fonts and favicons from public CDNs.
Serving copies from ``app/static/vendor`` keeps the explorers working where the service has no
route to those hosts, and tells no third party who is browsing the API.
"""

import pathlib
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from strawberry.http.ides import get_graphql_ide_html

STATIC_DIR = pathlib.Path(__file__).resolve().parent.parent / "static"

_VENDOR = "/static/vendor"
_SWAGGER_JS = f"{_VENDOR}/swagger-ui-dist/swagger-ui-bundle.js"
_SWAGGER_CSS = f"{_VENDOR}/swagger-ui-dist/swagger-ui.css"
_FAVICON = f"{_VENDOR}/swagger-ui-dist/favicon-32x32.png"
_REDOC_JS = f"{_VENDOR}/redoc/redoc.standalone.js"

# Keyed by the exact URLs in strawberry's template, versions included: a strawberry upgrade that
# moves to other versions must fail loudly below instead of pairing its new integrity hashes (or
# its new page script) with the old vendored files.
_GRAPHIQL_ASSETS = {
    "https://unpkg.com/react@18.2.0/umd/react.production.min.js": "react/react.production.min.js",
    "https://unpkg.com/react-dom@18.2.0/umd/react-dom.production.min.js": (
        "react-dom/react-dom.production.min.js"
    ),
    "https://unpkg.com/js-cookie@3.0.5/dist/js.cookie.min.js": "js-cookie/js.cookie.min.js",
    "https://unpkg.com/graphiql@3.8.3/graphiql.min.css": "graphiql/graphiql.min.css",
    "https://unpkg.com/graphiql@3.8.3/graphiql.min.js": "graphiql/graphiql.min.js",
    "https://unpkg.com/@graphiql/plugin-explorer@1.0.2/dist/style.css": (
        "@graphiql/plugin-explorer/style.css"
    ),
    "https://unpkg.com/@graphiql/plugin-explorer@1.0.2/dist/index.umd.js": (
        "@graphiql/plugin-explorer/index.umd.js"
    ),
}

_REMOTE_ASSET = re.compile(r"""\b(?:src|href)\s*=\s*["']\s*((?:https?:)?//[^"'\s]+)""", re.I)


def _localise_graphiql(html: str) -> str:
    # The template's integrity attributes stay: the vendored files are byte-identical to what
    # they pin, which tests/test_docs_assets.py checks.
    for remote, local in _GRAPHIQL_ASSETS.items():
        html = html.replace(f'"{remote}"', f'"{_VENDOR}/{local}"')
    leftover = _REMOTE_ASSET.findall(html)
    if leftover:
        raise RuntimeError(
            "strawberry's GraphiQL page loads assets that are not vendored in "
            f"{STATIC_DIR / 'vendor'}: {', '.join(leftover)}"
        )
    return html


# Rendered once at import so a strawberry upgrade that changes the page's assets stops the service
# at startup rather than on the first visit to /graphql.
_GRAPHIQL_HTML = _localise_graphiql(get_graphql_ide_html("graphiql"))


def graphiql_html() -> str:
    """Strawberry's GraphiQL page, loading its assets from ``/static/vendor``."""
    return _GRAPHIQL_HTML


def _root_path(request: Request) -> str:
    root_path: str = request.scope.get("root_path", "")
    return root_path.rstrip("/")


def install_docs(app: FastAPI, *, openapi_url: str = "/openapi.json") -> None:
    """Serve ``/static`` and the Swagger UI (``/docs``) and ReDoc (``/redoc``) pages.

    Meant for an app built with ``docs_url=None, redoc_url=None``; like FastAPI's own pages these
    honour the app's ``swagger_ui_*`` settings and the ASGI ``root_path``.
    """
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # Swagger UI otherwise sends the schema's URL to validator.swagger.io for a badge.
    swagger_ui_parameters: dict[str, Any] = {
        "validatorUrl": None,
        **(app.swagger_ui_parameters or {}),
    }
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root_path(request)
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=root + _SWAGGER_JS,
            swagger_css_url=root + _SWAGGER_CSS,
            swagger_favicon_url=root + _FAVICON,
            oauth2_redirect_url=root + oauth2_redirect_url if oauth2_redirect_url else None,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=swagger_ui_parameters,
        )

    async def swagger_ui_oauth2_redirect(_request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> HTMLResponse:
        root = _root_path(request)
        response = get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=root + _REDOC_JS,
            redoc_favicon_url=root + _FAVICON,
            with_google_fonts=False,
        )
        # The bundle hard-codes its sidebar logo at cdn.redoc.ly and has no option to drop it;
        # refused, the image is hidden and the "API docs by Redocly" text stays.
        response.headers["Content-Security-Policy"] = "img-src 'self' data:"
        return response

    # Plain Starlette routes, as FastAPI's own docs pages use: they skip the app's route class
    # and dependency machinery, which these static pages have no use for.
    app.add_route("/docs", swagger_ui, methods=["GET"], include_in_schema=False)
    if oauth2_redirect_url:
        app.add_route(
            oauth2_redirect_url,
            swagger_ui_oauth2_redirect,
            methods=["GET"],
            include_in_schema=False,
        )
    app.add_route("/redoc", redoc, methods=["GET"], include_in_schema=False)
