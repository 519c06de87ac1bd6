"""Model cards on a real server: the API, the pages in HTML and in Chromium, the package index, the setup line.

A hostile card (script and style tags, ``javascript:`` and ``data:`` links, event-handler
attributes, a 5,000-row table, about 1 MB of text) renders inert and bounded: checked in
the HTML the server sends and in Debian's Chromium through Playwright (the harness of
``tests/test_web_browser.py``). The slow test copies the setup snippet from a model page,
runs it in a fresh virtual environment, and loads the model with the page's own code.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from registry.api import Registry
from registry.errors import AccessDenied, AuthenticationRequired
from tests.conftest import REFERENCE_DIR
from tests.server_support import create_token
from tests.test_web_browser import PHONE, browser  # noqa: F401  (the shared Chromium fixture)

ARCHIVE = (REFERENCE_DIR / "tf2_image_feature_vector.tar.gz").read_bytes()
TABLE_ROWS = 5000
HOSTILE = (
    "---\nlicense: apache-2.0\ntags: [image-feature-vector]\nbase_model: google/mobilenet_v2\n---\n"
    "# Hostile card <script>window.injected = 1</script>\n\n"
    "<script>window.injected = 2; alert('script')</script>\n\n"
    "<style>body { display: none }</style>\n\n"
    "<img src=x onerror=\"window.injected = 3\">\n"
    "<a href=\"javascript:window.injected=4\" onclick=\"alert(5)\">raw</a>\n\n"
    "[js link](javascript:alert(6)) [data link](data:text/html;base64,PHNjcmlwdD5hbGVydCg3KTwvc2NyaXB0Pg==) "
    "![data image](data:image/png;base64,iVBORw0KGgo=) [fine](https://example.org/paper)\n\n"
    "| row | value |\n|---|---|\n" + "".join(f"| {i} | v{i} |\n" for i in range(TABLE_ROWS)) + "\n"
)
HOSTILE += "lorem ipsum dolor sit amet " * ((1_000_000 - len(HOSTILE)) // 27)


def _card_region(page: bytes) -> str:
    text = page.decode()
    start = text.index('<div class="card-body"')
    return text[start:text.index("</section>", start)]


@pytest.fixture
def card_server(registry_server):
    server = registry_server
    status, body = server.publish("vision/hostile", ARCHIVE, description="A card that tries everything", card=HOSTILE)
    assert status == 201, body
    status, body = server.publish("vision/hostile", ARCHIVE, parent="vision/hostile/1",
                                  card="# Second\n\nFine-tuned on more data.")
    assert status == 201, body
    return server


def test_a_hostile_card_renders_inert_and_bounded_in_the_html(card_server):
    server = card_server
    status, headers, page = server.request("GET", "/vision/hostile/1", headers={"Accept": "text/html"})
    assert status == 200
    assert "script-src 'self'" in headers["content-security-policy"] and "'unsafe-inline'" not in \
        headers["content-security-policy"]
    card = _card_region(page)
    tags = " ".join(re.findall(r"<[a-zA-Z][^>]*>", card))  # the markup itself (its text may say anything)
    assert re.findall(r"<([a-z0-9]+)", tags) and not {"script", "style", "iframe"} & set(re.findall(r"<([a-z0-9]+)",
                                                                                                    tags))
    for forbidden in (r"\son\w+\s*=", r"javascript:", r"data:", r"style="):
        assert not re.search(forbidden, tags, re.IGNORECASE), forbidden
    # The raw HTML is there as text; the good link is a link, marked nofollow.
    assert "&lt;script&gt;window.injected = 2" in card and "&lt;style&gt;body" in card
    assert '<a href="https://example.org/paper" rel="nofollow noopener noreferrer">fine</a>' in card
    # Bounded: 100 table rows and a note, the text cut with a note saying where the rest is; a page, not a megabyte.
    assert card.count("<tr>") == 1 + 100 + 1 and f"{TABLE_ROWS - 100:,} more rows not shown" in card
    assert 'id="card-cut"' in page.decode() and len(page) < 300_000
    # The card's front matter filled the fields; the lineage is by the title of version 2.
    status, _, second = server.request("GET", "/vision/hostile/2", headers={"Accept": "text/html"})
    lineage = re.search(r'<p class="lineage-line".*?</p>', second.decode(), re.DOTALL).group(0)
    assert "Derived from" in lineage and 'href="/vision/hostile/1"' in lineage
    status, body = server.json("GET", "/api/v1/models/vision/hostile/versions/1")
    assert body["license"] == "Apache-2.0" and body["tags"] == ["image-feature-vector"] and body["card"] == HOSTILE


def test_the_card_api_needs_a_publish_token_for_the_publisher_and_keeps_the_artifact(card_server, tmp_path):
    server = card_server
    before = server.json("GET", "/api/v1/models/vision/hostile/versions/2")[1]
    path = "/api/v1/models/vision/hostile/versions/2/card"
    new = {"card": "---\ntags: [edited]\n---\n# Edited"}
    assert server.json("PUT", path, json_body=new)[0] == 401
    assert server.json("PUT", path, json_body=new, token=create_token(server.env, "reader", "read"))[0] == 403
    other = create_token(server.env, "other", "publish", publisher="text")
    assert server.json("PUT", path, json_body=new, token=other)[0] == 403
    status, body = server.json("PUT", path, json_body={"card": 3}, token=server.admin_token)
    assert status == 422 and body["type"] == "MetadataError"

    client = Registry(server_url=server.url, token=create_token(server.env, "vision", "publish", publisher="vision"),
                      cache_dir=tmp_path / "cache")
    edited = client.set_card("vision/hostile/2", new["card"])
    assert edited.tags == ["edited"] and edited.card == new["card"]
    assert (edited.sha256, edited.size) == (before["sha256"], before["size"])
    assert client.get_version("vision/hostile/2").artifact_uri == before["artifact_uri"]
    # Client mode: README.md travels in the archive and the server makes it the card; --card travels in the manifest.
    model_dir = tmp_path / "model"
    shutil.copytree(REFERENCE_DIR / "tf2_image_feature_vector", model_dir)
    (model_dir / "README.md").write_text("---\nlanguage: fr\n---\n# Lisez-moi\n", encoding="utf-8")
    from_readme = client.publish(model_dir, name="vision/readme")
    assert from_readme.card.endswith("# Lisez-moi\n") and from_readme.language == ["fr"]
    assert "README.md" in [entry["path"] for entry in from_readme.files]
    assert client.publish(model_dir, name="vision/readme", card="# Given").card == "# Given"
    assert client.publisher_card("vision").card is None
    assert client.set_publisher_card("vision", "# Vision team\n\nImage models.").card.startswith("# Vision")
    with pytest.raises(AccessDenied):
        Registry(server_url=server.url, token=other, cache_dir=tmp_path / "c2").set_publisher_card("vision", "# no")
    with pytest.raises(AuthenticationRequired):
        Registry(server_url=server.url, cache_dir=tmp_path / "c3").set_card("vision/hostile/2", "# no")
    entries = server.json("GET", "/api/v1/audit?action=card.set", token=server.admin_token)[1]["items"]
    assert [(e["subject"], e["actor"]) for e in entries] == [("publisher:vision", "vision"),
                                                             ("vision/hostile/2", "vision")]

    status, _, page = server.request("GET", "/vision", headers={"Accept": "text/html"})
    assert status == 200 and b"Image models." in page and b'href="/vision/hostile"' in page
    assert b"2 models, 4 versions" in page
    assert server.request("GET", "/nobody", headers={"Accept": "text/html"})[0] == 404


def test_the_package_index_serves_the_running_projects_wheel(card_server):
    server = card_server
    status, _, index = server.request("GET", "/simple/")
    assert status == 200 and b'href="/simple/tf-model-registry/"' in index
    status, _, links = server.request("GET", "/simple/tf_model_registry/")  # any spelling of the name (PEP 503)
    match = re.search(rb'href="(/simple/tf-model-registry/(tf_model_registry-[^"#]+\.whl))#sha256=([0-9a-f]{64})"',
                      links)
    assert status == 200 and match
    status, _, wheel = server.request("GET", match.group(1).decode())
    assert status == 200 and hashlib.sha256(wheel).hexdigest() == match.group(3).decode()
    (Path(server.log_path).parent / "client.whl").write_bytes(wheel)
    names = zipfile.ZipFile(Path(server.log_path).parent / "client.whl").namelist()
    assert "registry/cards/render.py" in names and "registry/server/templates/model.html" in names
    # The page's setup line names exactly this file.
    _, _, page = server.request("GET", "/vision/hostile/1", headers={"Accept": "text/html"})
    setup = html.unescape(re.search(rb'<code id="use-setup-code">(.*?)</code>', page, re.DOTALL).group(1).decode())
    assert f'pip install "tf-model-registry @ {server.url}{match.group(1).decode()}"' in setup


def test_the_hostile_card_in_chromium(browser, card_server):  # noqa: F811
    server = card_server
    for viewport in ({"width": 1280, "height": 900}, PHONE):
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda dialog, seen=dialogs: (seen.append(dialog.message), dialog.dismiss()))
        page.goto(server.url + "/vision/hostile/1")
        page.wait_for_load_state("load")
        card = page.locator("#card .card-body")
        assert page.evaluate("window.injected === undefined") and dialogs == []
        assert page.locator("body").is_visible()  # the card's <style> is text
        assert "<script>window.injected = 2; alert('script')</script>" in card.inner_text()
        assert page.evaluate("""() => [...document.querySelectorAll('#card *')].flatMap(e => [...e.attributes]
            .filter(a => /^on/i.test(a.name) || /^\\s*(javascript|data):/i.test(a.value)).map(a => a.name))""") == []
        # Bounded: the card scrolls in its own box; the page does not scroll sideways; the contents list is on
        # the first screen and reaches every section.
        assert card.bounding_box()["height"] <= 800
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        contents = page.get_by_role("navigation", name="On this page")
        assert contents.bounding_box()["y"] < viewport["height"]
        for href in contents.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))"):
            assert page.locator(href).count() == 1, href
        page.get_by_role("navigation", name="On this page").get_by_role("link", name="Versions").click()
        assert page.locator("#versions").bounding_box()["y"] < viewport["height"]
        # The download button gives the archive whose sha256 the catalog has; the file list has its files.
        record = page.request.get(server.url + "/api/v1/models/vision/hostile/versions/1").json()
        button = page.get_by_role("link", name=re.compile(r"^Download"))
        assert "(.tar.gz," in button.inner_text()
        response = page.request.get(server.url + button.get_attribute("href"))
        assert hashlib.sha256(response.body()).hexdigest() == record["sha256"]
        files = page.locator("#files table tbody tr").all_inner_texts()
        assert [f["path"] for f in record["files"]] == [row.split("\t")[0] for row in files]
        assert "saved_model.pb" in "".join(files)
        context.close()


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_the_setup_snippet_of_a_model_page_installs_the_client_in_a_fresh_venv_and_loads_the_model(
        card_server, tmp_path):
    """The page's setup lines, run as printed in a new virtual environment (no system site packages) that reaches
    the package registry (for the client's dependencies; pip's cache may serve them) and this server only."""
    server = card_server
    _, _, page = server.request("GET", "/vision/hostile/2", headers={"Accept": "text/html"})
    code = {name.decode(): html.unescape(text.decode()) for name, text in
            re.findall(rb'<code id="(use-[a-z-]+)-code">(.*?)</code>', page, re.DOTALL)}
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "MODEL_REGISTRY_"))}
    env.update({"PATH": f"{venv / 'bin'}:{env['PATH']}", "VIRTUAL_ENV": str(venv), "TF_CPP_MIN_LOG_LEVEL": "3",
                "MODEL_REGISTRY_CACHE_DIR": str(tmp_path / "cache"), "HOME": str(tmp_path / "home")})
    env["PIP_CACHE_DIR"] = os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip"))
    work = tmp_path / "work"
    work.mkdir()
    check = (f"{code['use-load']}\nprint('LOADED', type(model).__name__)\n"
             "import registry\nprint('FROM', registry.__file__)\n")
    script = f"{code['use-setup']}\npython - <<'EOF'\n{check}EOF\n"
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, env=env, capture_output=True,
                            text=True, timeout=2000)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-6000:]
    assert "LOADED" in result.stdout
    assert Path(result.stdout.split("FROM ", 1)[1].split()[0]).resolve().is_relative_to(venv.resolve())
