"""The API explorer pages must load every asset from the service itself, never from a CDN."""

import base64
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html.parser import HTMLParser

import httpx
import pytest
import strawberry
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from strawberry.fastapi import GraphQLRouter

from app.web.docs import STATIC_DIR, graphiql_html, install_docs

CDN_HOSTS = ("unpkg.com", "cdn.jsdelivr.net", "cdnjs.cloudflare.com", "fonts.googleapis.com")


@strawberry.type
class Query:
    @strawberry.field
    def ping(self) -> str:
        return "pong"


class Router(GraphQLRouter[None, None]):
    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        return HTMLResponse(graphiql_html())


def make_app() -> FastAPI:
    app = FastAPI(title="Docs Test API", docs_url=None, redoc_url=None)

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"ping": "pong"}

    install_docs(app)
    app.include_router(Router(strawberry.Schema(Query)), prefix="/graphql")
    return app


@asynccontextmanager
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


class _AssetCollector(HTMLParser):
    """Collects what a browser would fetch on load: script sources and linked resources."""

    def __init__(self) -> None:
        super().__init__()
        self.assets: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script" and attributes.get("src"):
            self.assets.append({"url": attributes["src"], **attributes})
        elif tag == "link" and attributes.get("href"):
            self.assets.append({"url": attributes["href"], **attributes})


def assets_of(html: str) -> list[dict[str, str | None]]:
    collector = _AssetCollector()
    collector.feed(html)
    return collector.assets


def local_file(url: str) -> str:
    assert url.startswith("/static/"), url
    path = (STATIC_DIR / url.removeprefix("/static/")).resolve()
    assert path.is_relative_to(STATIC_DIR.resolve())
    return str(path)


@pytest.mark.asyncio
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_explorer_page_loads_only_local_assets(page: str) -> None:
    async with client() as c:
        response = await c.get(page)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")

        assets = assets_of(response.text)
        urls = [a["url"] for a in assets]
        assert any(u and u.endswith(".js") for u in urls), urls
        for url in urls:
            assert url is not None
            assert url.startswith("/static/vendor/"), url
            asset = await c.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 500, url

        for host in CDN_HOSTS:
            assert host not in response.text


@pytest.mark.asyncio
async def test_redoc_page_refuses_off_site_images() -> None:
    async with client() as c:
        response = await c.get("/redoc")
    assert response.headers["content-security-policy"] == "img-src 'self' data:"


@pytest.mark.asyncio
async def test_docs_pages_are_not_in_the_schema() -> None:
    async with client() as c:
        schema = (await c.get("/openapi.json")).json()
    assert set(schema["paths"]) == {"/ping", "/graphql"}


def test_graphiql_page_uses_vendored_assets() -> None:
    html = graphiql_html()
    for host in CDN_HOSTS:
        assert host not in html

    assets = assets_of(html)
    assert len(assets) >= 7
    for asset in assets:
        url = asset["url"]
        assert url is not None
        if url.startswith("data:"):
            continue
        with open(local_file(url), "rb") as f:
            body = f.read()
        assert len(body) > 500, url

        # Strawberry's integrity hashes are kept, so the vendored files must be the exact bytes
        # they pin; a mismatch here means the browser would refuse to run the file.
        integrity = asset.get("integrity")
        if integrity:
            algorithm, _, expected = integrity.partition("-")
            digest = base64.b64encode(hashlib.new(algorithm, body).digest()).decode()
            assert digest == expected, url


@pytest.mark.asyncio
async def test_graphiql_route_serves_the_local_page() -> None:
    async with client() as c:
        response = await c.get("/graphql", headers={"accept": "text/html"})
        assert response.status_code == 200
        assert response.text == graphiql_html()
        for asset in assets_of(response.text):
            url = asset["url"]
            if url and url.startswith("/static/"):
                assert (await c.get(url)).status_code == 200, url
