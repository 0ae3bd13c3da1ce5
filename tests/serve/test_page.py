"""The web page's files as the server sends them (no browser): public, strict Content-Security-Policy, only the
package's own files, shipped in the wheel, and no script that turns text into HTML or code."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterator
from fnmatch import fnmatch
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rag.pipeline import RagPipeline
from rag.serve.app import ServerSettings, create_app
from rag.serve.routes.page import assets

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "rag" / "serve" / "web"


@pytest.fixture
def keyed(fake_pipeline: Callable[..., RagPipeline], corpus_dir: Path) -> Iterator[TestClient]:
    pipeline = fake_pipeline()
    pipeline.ingest([corpus_dir])
    with TestClient(create_app(pipeline, ServerSettings(api_key="k", warm_up=False))) as client:
        yield client


def referenced_files(html: str, scripts: dict[str, str]) -> set[str]:
    """What the page loads: its src/href under /web/, and every module those scripts import."""
    names = {m for m in re.findall(r'(?:src|href)="/web/([^"]+)"', html)}
    for source in scripts.values():
        names |= set(re.findall(r'from "\./([^"]+)"', source))
    return names


def test_the_page_and_its_files_load_without_the_key(keyed: TestClient) -> None:
    page = keyed.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    scripts = {p.name: p.read_text() for p in WEB.glob("*.js")}
    needed = referenced_files(page.text, scripts)
    assert {"app.js", "style.css", "api.js", "answer.js", "sources.js", "documents.js", "dom.js"} <= needed
    for name in needed:
        r = keyed.get(f"/web/{name}")
        assert r.status_code == 200, name
        assert r.content == (WEB / name).read_bytes()
        assert r.headers["x-content-type-options"] == "nosniff"
    assert keyed.get("/web/app.js").headers["content-type"].startswith("text/javascript")
    assert keyed.get("/web/style.css").headers["content-type"].startswith("text/css")
    # the data behind the page still needs the key
    assert keyed.get("/info").status_code == 401
    assert keyed.get("/documents").status_code == 401
    assert keyed.get("/info", headers={"Authorization": "Bearer k"}).status_code == 200


def test_the_content_security_policy_allows_only_this_servers_own_scripts(keyed: TestClient) -> None:
    policy = keyed.get("/").headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"  # no inline script, no eval, no other origin
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["base-uri"] == "'none'"
    assert "unsafe" not in policy and "http" not in policy
    html = (WEB / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script in index.html"
    assert not re.search(r"\son[a-z]+=", html), "inline event handler in index.html"
    assert not re.search(r"\sstyle=", html), "inline style in index.html"
    assert not re.search(r"https?://", html), "the page must not load anything from another origin"


def test_only_the_packages_page_files_are_served(keyed: TestClient) -> None:
    assert set(assets()) == {p.name for p in WEB.iterdir() if p.suffix in {".html", ".js", ".css"}}
    assert keyed.get("/web/nope.js").status_code == 404
    for path in ["/web/../info", "/web/..%2Finfo", "/web/%2e%2e/info", "/web/.hidden.js", "/web/page.py"]:
        r = keyed.get(path)
        assert r.status_code in (401, 404, 422), (path, r.status_code)
        assert "embedder" not in r.text  # never the index info without the key


def test_no_script_turns_text_into_html_or_code() -> None:
    """Document text and model output go into the page as text nodes; the scripts never parse strings as HTML
    or run them (the CSP would also stop the latter)."""
    forbidden = re.compile(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|createContextualFragment"
        r"|DOMParser|setAttribute\(\s*[\"']on|srcdoc"
    )
    scripts = sorted(WEB.glob("*.js"))
    assert scripts
    for path in scripts:
        hits = [line for line in path.read_text().splitlines() if forbidden.search(line)]
        assert not hits, f"{path.name}: {hits}"


def test_the_page_files_ship_in_the_wheel() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["rag.serve"]
    for path in WEB.iterdir():
        assert any(fnmatch(f"web/{path.name}", p) for p in patterns), f"{path.name} would not be in the wheel"
