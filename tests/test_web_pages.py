"""The web catalog's pages over HTTP, from a real ``model-registry serve``: escaping, errors, paging, tokens.

The catalog is filled directly through ``registry.catalog.store.Catalog`` with
small records (no TensorFlow, no archives): pages read only the catalog. The
browser flow is in ``tests/test_web_browser.py``.
"""

from __future__ import annotations

import hashlib
import http.client
import re
from urllib.parse import quote, urlencode, urlsplit

import pytest

from registry.adapter import SignatureInfo, TensorInfo
from registry.catalog.models import VersionCreate
from registry.catalog.store import Catalog

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
MARKUP = "<script>alert(1)</script><img src=x onerror=alert(2)> \"quotes\" & 'apostrophes'"


def add_version(catalog: Catalog, name: str, *, fmt: str = "tf2_saved_model", description: str = "",
                parent: str | None = None, task: str | None = "image_feature_vector", dim: int = 8, n: int = 0):
    """One small fake version of ``publisher/model``: an image feature vector unless told otherwise."""
    publisher, model = name.split("/")
    images = {"images": TensorInfo("float32", (None, 32, 32, 3))}
    call = "image_feature_vector" if fmt == "tf1_hub" else "__call__"
    features = {"default": TensorInfo("float32", (None, dim))}
    signatures = [SignatureInfo(call, images, features)]
    if fmt == "tf1_hub":
        signatures.append(SignatureInfo("default", images, features))
    tasks = [{"task": task, "signature": call, "output_dim": dim, "image_height": 32, "image_width": 32,
              "evidence": {"output_dim": dim, "image_size": [32, 32], "image_size_from": "input shape"}}] \
        if task else []
    digest = hashlib.sha256(f"{name} {n} {description}".encode()).hexdigest()
    return catalog.create_version(VersionCreate(
        publisher=publisher, name=model, format=fmt, artifact_uri=f"file:///nowhere/{digest}", sha256=digest,
        size=12_345, tag_sets=[[]], signatures=signatures, description=description, parent=parent, tasks=tasks))


def catalog_of(server) -> Catalog:
    return Catalog(server.env["MODEL_REGISTRY_DATABASE_URL"])


def get(server, path: str, headers: dict | None = None, method: str = "GET", body: bytes | None = None):
    """(status, headers, text) of one request, redirects not followed (http.client, unlike urllib)."""
    parts = urlsplit(server.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read().decode()
    finally:
        connection.close()


def result_names(page: str) -> list[str]:
    return re.findall(r'<li class="result">\s*<h3><a href="[^"]+">([^<]+)</a>', page)


def test_sizes_are_written_one_way_in_binary_units_by_the_pages_and_the_cli():
    from registry.cli import cache, models, progress
    from registry.output import format_size
    from registry.server.web_templates import environment

    assert all(module.format_size is format_size for module in (cache, models, progress))
    assert environment().filters["size"] is format_size
    cases = {None: "?", 0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 12_345: "12.1 KiB", (1 << 20) - 1: "1.0 MiB",
             8 << 30: "8.0 GiB", 3 << 40: "3.0 TiB", 1 << 60: "1024.0 PiB"}
    assert {size: format_size(size) for size in cases} == cases


def test_markup_in_descriptions_and_queries_is_shown_as_text(registry_server):
    with catalog_of(registry_server) as catalog:
        add_version(catalog, "web/escaped", description=MARKUP)
        add_version(catalog, "web/other", description="plain")
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"
    for path in ("/", "/web/escaped", "/web/escaped/1", "/?q=alert", "/compare?a=web/escaped/1&b=web/other/1"):
        status, headers, page = get(registry_server, path, HTML)
        assert status == 200 and headers["content-type"].startswith("text/html"), (path, status)
        assert escaped in page, path
        assert "<script>alert" not in page and "<img src=x" not in page, path
        # The only script is the catalog's own, and the policy would refuse any inline one.
        assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/catalog.js" defer>'], path
        assert "script-src 'self'" in headers["content-security-policy"]
    status, _, page = get(registry_server, "/?" + urlencode({"q": '"><script>alert(3)</script>'}), HTML)
    assert status == 200 and 'value="&#34;&gt;&lt;script&gt;alert(3)&lt;/script&gt;"' in page
    assert "<script>alert(3)" not in page


def test_pages_use_only_this_servers_assets(registry_server):
    with catalog_of(registry_server) as catalog:
        add_version(catalog, "web/assets", fmt="tf1_hub")
    status, headers, css = get(registry_server, "/static/catalog.css")
    assert status == 200 and headers["content-type"].startswith("text/css") and "@media" in css
    status, headers, js = get(registry_server, "/static/catalog.js")
    assert status == 200 and "navigator.clipboard" in js
    for path in ("/", "/web/assets", "/compare", "/signin"):
        _, _, page = get(registry_server, path, HTML)
        references = re.findall(r'(?:src|href|action)="([^"]*)"', page)
        assert references and all(ref.startswith(("/", "#", "data:")) for ref in references), (path, references)
        assert '<html lang="en">' in page and 'name="viewport"' in page


def test_page_errors_are_html_pages_with_the_right_status(registry_server):
    with catalog_of(registry_server) as catalog:
        add_version(catalog, "web/known")
    cases = [("/web/unknown", 404, "no model"), ("/web/known/9", 404, "9"), ("/web/known@nope", 404, "nope"),
             ("/Web/known", 400, "invalid publisher"), ("/web/known/x1", 400, "a version in a model URL is a number"),
             ("/compare?a=web/known/1&b=not+a+handle", 400, "not a handle"),
             ("/compare?a=web/known/1&b=web/gone", 404, "no model"), ("/no/such/page/here", 404, "no page")]
    for path, expected, words in cases:
        status, headers, page = get(registry_server, path, HTML)
        assert status == expected, (path, status, page[:300])
        assert headers["content-type"].startswith("text/html"), path
        assert "<h1>" in page and words.lower() in page.lower(), (path, page)
    # An unknown task in the index's filter is the form's problem: said next to the form, not a failed page.
    status, _, page = get(registry_server, "/?task=no_such_task", HTML)
    assert status == 200 and 'role="alert"' in page and "unknown task" in page
    # The API, downloads and clients that do not ask for HTML keep their JSON errors.
    for path, headers in (("/api/v1/models/web/unknown", HTML), ("/web/unknown?tf-hub-format=compressed", HTML),
                          ("/Web/known", {}), ("/no/such/page/here", {"Accept": "*/*"})):
        status, response_headers, body = get(registry_server, path, headers)
        assert status in (400, 404) and response_headers["content-type"] == "application/json", (path, body)
        assert '"error"' in body


def test_index_searches_filters_and_pages(registry_server):
    with catalog_of(registry_server) as catalog:
        for i in range(30):
            fmt = "tf1_hub" if i % 3 == 0 else "tf2_saved_model"
            task = "text_embedding" if i % 10 == 7 else "image_feature_vector"
            add_version(catalog, f"pub{i % 2}/model-{i:02d}", fmt=fmt, task=task,
                        description="special sauce" if i == 11 else f"model number {i}")
    _, _, page = get(registry_server, "/", HTML)
    first = result_names(page)
    assert len(first) == 25 and first == sorted(first)
    next_href = re.search(r'<a href="([^"]+)" rel="next">', page).group(1).replace("&amp;", "&")
    assert next_href == "/?" + urlencode({"page": 2}) and "30 models" in page
    _, _, page = get(registry_server, next_href, HTML)
    second = result_names(page)
    assert len(second) == 5 and not set(first) & set(second) and 'rel="next"' not in page
    assert '<a href="/" rel="prev">Previous page</a>' in page and "Page 2 of 2" in page

    assert result_names(get(registry_server, "/?q=special+sauce", HTML)[2]) == ["pub1/model-11"]
    assert result_names(get(registry_server, "/?task=text_embedding", HTML)[2]) == \
        ["pub1/model-07", "pub1/model-17", "pub1/model-27"]
    tf1 = result_names(get(registry_server, "/?format=tf1_hub", HTML)[2])
    assert tf1 == sorted(f"pub{i % 2}/model-{i:02d}" for i in range(0, 30, 3))
    only_pub0 = result_names(get(registry_server, "/?publisher=pub0", HTML)[2])
    assert len(only_pub0) == 15 and all(name.startswith("pub0/") for name in only_pub0)
    # Filters carry over to the next page; the form shows what was asked.
    _, _, page = get(registry_server, "/?format=tf2_saved_model", HTML)
    assert len(result_names(page)) == 20 and 'rel="next"' not in page
    assert '<option value="tf2_saved_model" selected>' in page
    _, _, page = get(registry_server, "/?q=model&publisher=pub1", HTML)
    assert len(result_names(page)) == 15  # every name has "model" in it
    status, _, page = get(registry_server, "/?q=nothing-like-this", HTML)
    assert status == 200 and result_names(page) == [] and "No model matches" in page


def test_model_and_version_pages_show_versions_lineage_matrix_and_code(registry_server):
    url = registry_server.url
    with catalog_of(registry_server) as catalog:
        add_version(catalog, "web/base", fmt="tf1_hub", description="the base module", n=1)
        add_version(catalog, "web/base", fmt="tf1_hub", n=2)
        add_version(catalog, "web/base", fmt="tf1_hub", parent="web/base/1", n=3)
        catalog.delete_version(publisher="web", name="base", version=2)
        catalog.set_alias(publisher="web", name="base", alias="prod", version=3)
        add_version(catalog, "web/derived", parent="web/base/3", description="fine-tuned", dim=16)

    status, _, page = get(registry_server, "/web/base", HTML)
    assert status == 200 and "the newest version is 3" in page
    rows = re.findall(r"<tr( class=\"selected\")?( data-deleted)?>\s*<th scope=\"row\" data-label=\"Version\">"
                      r"<a href=\"/web/base/(\d)\"", page)
    assert rows == [(' class="selected"', "", "3"), ("", " data-deleted", "2"), ("", "", "1")]
    assert "@prod" in page and re.search(r"<code title=\"[0-9a-f]{64}\">[0-9a-f]{12}</code>", page)
    assert '<a href="/web/base/1">web/base/1</a>' in page  # lineage: derived from
    assert '<a href="/web/derived/1">web/derived/1</a>' in page  # lineage: derived versions
    assert page.count('class="status-no">not supported<') == 2 and page.count('class="status-yes">supported<') == 4
    assert "Instead:" in page
    assert f'hub.load(&#34;{url}/web/base/3&#34;)' in page  # pinned, even on the unpinned page
    assert "registry.Module(&#34;web/base/3&#34;)" in page and "tf.compat.v1.placeholder(tf.float32" in page
    assert f'curl -L &#34;{url}/web/base/3?tf-hub-format=compressed&#34; | tar xz' in page
    assert "Output dimension</dt><dd>8</dd>" in page and "32 × 32 (from input shape)" in page
    assert "<dt>Size</dt><dd>12.1 KiB</dd>" in page  # 12,345 bytes, as model-registry show writes it

    status, _, page = get(registry_server, "/web/base@prod", HTML)
    assert status == 200 and "alias @prod names version 3" in page and f"{url}/web/base/3" in page
    status, _, page = get(registry_server, "/web/base/2", HTML)
    assert status == 200 and "This version was deleted" in page and 'id="use-hub-code"' not in page
    status, _, page = get(registry_server, "/web/derived", HTML)
    assert status == 200 and "registry.Module" not in page and "registry.KerasLayer(&#34;web/derived/1&#34;" in page
    assert page.count('class="status-no">') == 0 and "[?, 16]" in page


def test_long_version_lists_are_cut_with_a_link_to_all(registry_server):
    with catalog_of(registry_server) as catalog:
        for n in range(105):
            add_version(catalog, "web/busy", n=n)
    _, _, page = get(registry_server, "/web/busy/1", HTML)
    listed = re.findall(r'<th scope="row" data-label="Version"><a href="/web/busy/(\d+)"', page)
    assert listed == [str(n) for n in range(105, 5, -1)] + ["1"]  # the newest 100, then the one selected
    assert 'href="/web/busy/1?versions=all#versions">Show all 105 versions</a>' in page
    _, _, page = get(registry_server, "/web/busy/1?versions=all", HTML)
    assert len(re.findall(r'<th scope="row" data-label="Version">', page)) == 105 and "Show all" not in page


@pytest.fixture
def locked_server(start_registry_server):
    server = start_registry_server(extra_env={"MODEL_REGISTRY_REQUIRE_READ_TOKEN": "1"})
    with catalog_of(server) as catalog:
        add_version(catalog, "web/secret", description="behind a token")
    status, body = server.json("POST", "/api/v1/tokens", json_body={"name": "reader", "scope": "read"},
                               token=server.admin_token)
    assert status == 201, body
    server.read_token = body["token"]
    return server


def sign_in(server, token: str, next_path: str):
    form = urlencode({"token": token, "next": next_path}).encode()
    return get(server, "/signin", {"Content-Type": "application/x-www-form-urlencoded", **HTML}, "POST", form)


def test_pages_need_a_token_when_reads_do_and_take_it_from_a_sign_in_cookie(locked_server):
    server = locked_server
    for path in ("/", "/web/secret", "/web/secret/1", "/compare?a=web/secret/1&b=web/secret/1"):
        status, headers, page = get(server, path, HTML)
        assert status == 401 and headers["content-type"].startswith("text/html"), path
        assert headers["www-authenticate"] == "Bearer"
        assert '<form class="signin" method="post" action="/signin">' in page and "behind a token" not in page
        assert f'name="next" value="{path.replace("&", "&amp;")}"' in page

    status, headers, page = sign_in(server, "not-a-token", "/web/secret")
    assert status == 401 and "not valid" in page and "set-cookie" not in headers

    status, headers, _ = sign_in(server, server.read_token, "/web/secret")
    assert status == 303 and headers["location"] == "/web/secret"
    cookie = headers["set-cookie"]
    assert cookie.startswith(f"model_registry_token={server.read_token};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    signed_in = {**HTML, "Cookie": f"model_registry_token={server.read_token}"}
    status, _, page = get(server, "/web/secret", signed_in)
    assert status == 200 and "behind a token" in page and "Sign out" in page
    assert 'export MODEL_REGISTRY_TOKEN=' in page and "Authorization: Bearer $MODEL_REGISTRY_TOKEN" in page
    assert get(server, "/", signed_in)[0] == 200
    assert get(server, "/api/v1/models", signed_in)[0] == 200  # the cookie is a read credential everywhere

    # A browser sends cookies by itself, so a cookie never authorizes a write, whatever its token may do.
    admin_cookie = {"Cookie": f"model_registry_token={server.admin_token}", "Content-Type": "application/json"}
    status, _, body = get(server, "/api/v1/models/web/secret/aliases/prod", admin_cookie, "PUT", b'{"version": 1}')
    assert status == 401, body
    # The redirect after sign-in stays on this server.
    for evil in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        assert sign_in(server, server.read_token, evil)[1]["location"] == "/"
    status, headers, _ = get(server, "/signout", signed_in, "POST", b"")
    assert status == 303 and headers["set-cookie"].startswith('model_registry_token="";')
    assert server.read_token not in server.log() and server.admin_token not in server.log()
    assert quote(server.read_token) not in server.log()
