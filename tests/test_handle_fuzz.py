"""Whatever string a user passes, ``load``, ``resolve`` and ``get_version`` succeed or raise a ``RegistryError``.

A seeded generator (``random.Random``; no extra dependency) makes more than ten
thousand distinct handles: Unicode (right-to-left text, emoji, combining marks,
lone surrogates), control characters and NUL, strings of 10k+ characters, odd
schemes and malformed URLs, ``..`` segments, ``%`` escapes, ``@`` and ``/`` in
odd places, whitespace, catalog handles of unknown names, versions and aliases,
paths that do not exist, and files that exist but are no model. They run against
a real SQLite catalog holding one real published model, so catalog lookups hit a
catalog, and the few handles that name it load it.

No handle reaches a server: every network URL the generator writes names
127.0.0.1 on a port that was just bound and closed, and a guard refuses any
handle that parses to a URL of another host or port, or of a scheme that may go
online. The test runs in a temporary directory with HOME pointing into it, so
relative and ``~`` paths stay in the sandbox too.
"""

from __future__ import annotations

import os
import random
import socket
import string
import tarfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import registry
from registry.errors import ArtifactError, ArtifactNotFound, FormatError, HandleError, RegistryError, UnknownMode
from registry.handles import MAX_HANDLE_LENGTH, UrlHandle, parse
from registry.storage.remote import filesystem_for, list_directory, open_stream

SEED = 20261121
COUNT = 10_000
MODEL = "tf2_image_feature_vector"

#: Schemes read from this machine only (memory, local files, data: URLs, archives and wrappers over local files).
OFFLINE_SCHEMES = frozenset({"file", "local", "memory", "data", "zip", "tar", "dir", "reference", "blockcache",
                             "cached", "simplecache", "filecache", "generic", "async_wrapper", "asyncwrapper"})
#: Schemes the generator writes with a host; the guard lets them through for 127.0.0.1 only.
HOST_SCHEMES = frozenset({"http", "https", "ftp", "webhdfs"})


def closed_port() -> int:
    """A loopback port nothing listens on: bound by us a moment ago, then closed (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- the catalog the handles run against

@dataclass(frozen=True)
class FuzzEnv:
    root: Path
    registry: registry.Registry
    port: int
    model_dir: Path
    not_a_model: Path
    empty_dir: Path
    text_file: Path
    junk_archive: Path
    empty_archive: Path
    missing: Path


@pytest.fixture(scope="module")
def fuzz_env(tmp_path_factory, reference_dir) -> FuzzEnv:
    root = tmp_path_factory.mktemp("fuzz")
    reg = registry.Registry(database_url=f"sqlite:///{root}/catalog.db", storage_url=str(root / "artifacts"),
                            cache_dir=root / "cache")
    reg.publish(reference_dir / MODEL, name="pub/model")
    (root / "home").mkdir()
    (root / "not-a-model" / "variables").mkdir(parents=True)
    (root / "not-a-model" / "notes.txt").write_text("not a model")
    (root / "empty").mkdir()
    (root / "notes.txt").write_text("a file, not a model")
    (root / "junk.tar.gz").write_bytes(b"not gzip at all " * 64)
    with tarfile.open(root / "empty.tar.gz", "w:gz"):
        pass
    return FuzzEnv(root=root, registry=reg, port=closed_port(), model_dir=reference_dir / MODEL,
                   not_a_model=root / "not-a-model", empty_dir=root / "empty", text_file=root / "notes.txt",
                   junk_archive=root / "junk.tar.gz", empty_archive=root / "empty.tar.gz", missing=root / "missing")


@pytest.fixture
def sandboxed(fuzz_env, monkeypatch):
    """Relative paths and ``~`` resolve inside the fuzz directory, never in the repository or the real home."""
    monkeypatch.chdir(fuzz_env.root)
    monkeypatch.setenv("HOME", str(fuzz_env.root / "home"))
    return fuzz_env


# --------------------------------------------------------------------------- the generator

ASCII = string.ascii_letters + string.digits
NAME_CHARS = string.ascii_lowercase + string.digits + "-_."
RTL = "\u05d0\u05d1\u05e9\u05ea\u0627\u0644\u0639\u0631\u0628\u064a\u0629\u200f\u202e\u202b\u061c"
EMOJI = ["\U0001f600", "\U0001f680", "\U0001f4a9", "\U0001f1fa\U0001f1f8", "\U0001f468\u200d\U0001f469\u200d\U0001f467",
         "\u2764\ufe0f", "\U0001f44d\U0001f3fd"]
COMBINING = "\u0300\u0301\u0302\u0308\u0327\u0336\u20dd\u0489"
CONTROL = [chr(c) for c in range(0x20)] + ["\x7f", "\x85", "\x9f"]
WHITESPACE = [" ", "\t", "\n", "\r\n", "\u00a0", "\u2028", "\u3000", "\u200b", "\ufeff"]
ODD_DIGITS = ["\u0661", "\u00b2", "\u2167", "\uff11", "\U0001d7ce"]  # Arabic-Indic 1, superscript 2, roman 8...
SURROGATES = ["\ud800", "\udfff", "\udc80", "\udcff"]
PUNCTUATION = "/@%.:~-_?#&=+!*'()[]{};,$\\|^`\"<>"
SEGMENTS = ["..", ".", "", "%2e%2e", "%2F", "%00", "%zz", "%", "@", "a@b", "//", "~", "model", "1", "x.tar.gz",
            "saved_model.pb", "variables", "caf\u00e9", "\u05d0\u05d1", "\U0001f600", "e\u0301", " ", "a b"]
SCHEMES = ["nope", "NOPE", "x-y+z.w", "ftp", "FTP", "http", "HTTP", "https", "HtTpS", "file", "FILE", "memory",
           "Memory", "data", "local", "dir", "reference", "blockcache", "zip", "tar", "webhdfs", "s3a+nope", "1abc"]
NOT_QUITE_SCHEMES = ["gs:/", ":://", "://", "http:/", "http:", "file:", "memory:", "nope:/", "http//", "ftp:\\\\"]


class HandleGenerator:
    """Makes distinct, hostile handle strings from one seed. Each ``_kind`` method makes one sort."""

    def __init__(self, seed: int, env: FuzzEnv):
        self.rng = random.Random(seed)
        self.env = env
        self.kinds = [
            (self._noise, 14), (self._long, 3), (self._catalog_like, 16), (self._unknown_catalog, 8),
            (self._url, 22), (self._not_quite_url, 5), (self._path, 16), (self._known, 1), (self._dressed, 15),
        ]

    def handles(self, count: int) -> list[str]:
        seen: dict[str, None] = {}
        kinds, weights = zip(*self.kinds)
        while len(seen) < count:
            handle = self.rng.choices(kinds, weights)[0]()
            if handle not in seen and network_safe(handle, self.env.port):
                seen[handle] = None
        return list(seen)

    # -- pieces ----------------------------------------------------------------------------------

    def _char(self) -> str:
        pool = self.rng.choice([ASCII, NAME_CHARS, RTL, COMBINING, PUNCTUATION, "".join(CONTROL),
                                "".join(WHITESPACE), "".join(ODD_DIGITS), "".join(SURROGATES), "\x00"])
        if self.rng.random() < 0.08:
            return self.rng.choice(EMOJI)
        return self.rng.choice(pool)

    def _text(self, low: int = 0, high: int = 24) -> str:
        return "".join(self._char() for _ in range(self.rng.randint(low, high)))

    def _name(self) -> str:
        roll = self.rng.random()
        if roll < 0.55:
            return "".join(self.rng.choice(NAME_CHARS) for _ in range(self.rng.randint(1, 12)))
        if roll < 0.65:
            return self.rng.choice(["", ".", "..", "...", "-", "_", "A", "Pub", "model\u0301", "m\u00f6del",
                                    "x" * self.rng.choice([128, 129, 300]), "\U0001f600", "\u05d0", "a b"])
        return self._text(1, 10)

    def _segment(self) -> str:
        return self.rng.choice(SEGMENTS) if self.rng.random() < 0.6 else self._text(1, 8)

    def _rel_path(self, low: int = 1, high: int = 6) -> str:
        return "/".join(self._segment() for _ in range(self.rng.randint(low, high)))

    # -- kinds -------------------------------------------------------------------------------------

    def _noise(self) -> str:
        """Arbitrary characters from every pool, sometimes with '/' and '@' forced in."""
        text = self._text(0, 40)
        if self.rng.random() < 0.4 and text:
            cut = self.rng.randrange(len(text) + 1)
            text = text[:cut] + self.rng.choice(["/", "@", "//", "/@", "@/", "/1", "::", "://"]) + text[cut:]
        return text

    def _long(self) -> str:
        """10k-20k characters: one repeated piece, noise, or a path, URL or catalog handle grown huge."""
        size = self.rng.randint(10_000, 20_000)
        base = self.rng.choice([
            lambda: "a" * size,
            lambda: "/" + "a/" * (size // 2),
            lambda: "pub/" + "m" * size,
            lambda: "pub/model/" + "9" * size,
            lambda: "pub/model@" + "a" * size,
            lambda: f"http://127.0.0.1:{self.env.port}/" + "x" * size,
            lambda: "memory://" + "y/" * (size // 2),
            lambda: "file://" + str(self.env.missing) + "/" + "z" * size,
            lambda: str(self.env.root) + "/" + "\u00e9" * size,
            lambda: "".join(self._char() for _ in range(size // 4)) * 4,
            lambda: self.rng.choice(EMOJI) * (size // 2),
            lambda: "\x00" * size,
        ])
        return base()

    def _catalog_like(self) -> str:
        """publisher/model[/N|@alias] with mutated names, versions and separators."""
        publisher, model = self._name(), self._name()
        roll = self.rng.random()
        if roll < 0.25:
            tail = ""
        elif roll < 0.55:
            tail = "/" + self.rng.choice([
                str(self.rng.randint(1, 50)), "0", "-1", "01", "1.0", "1e3", " 1", "+1", str(2**31 - 1), str(2**31),
                str(2**63), "9" * self.rng.randint(20, 4000), self.rng.choice(ODD_DIGITS), "latest", "x", "1/2", ""])
        elif roll < 0.85:
            tail = "@" + self.rng.choice([self._name(), "latest", "", "@", "a@b", "1", "LATEST", "a/b"])
        else:
            tail = self.rng.choice(["/1@a", "//1", "/..", "/./1", "@a/1", "%2F1", "/%31", "?v=1", "#1"])
        prefix = self.rng.choice(["", "", "", "/", "@", "./", "~", "%2e"]) if self.rng.random() < 0.15 else ""
        return f"{prefix}{publisher}/{model}{tail}"

    def _unknown_catalog(self) -> str:
        """Valid catalog handles of things the catalog does not hold (and a few it does)."""
        name = "".join(self.rng.choice(string.ascii_lowercase) for _ in range(self.rng.randint(1, 10)))
        return self.rng.choice([
            f"pub/{name}", f"{name}/model", f"{name}/{name}/3", f"pub/model/{self.rng.randint(2, 10**6)}",
            f"pub/model@{name}", f"pub/{name}@latest", f"pub/{name}/1", f"nobody.{name}/m-{name}_1.0",
            f"pub/model/{2**31 - 1}",
        ])

    def _url(self) -> str:
        """scheme://location with hosts, ports, userinfo, queries and fragments, some of them broken."""
        scheme = self.rng.choice(SCHEMES)
        if scheme.lower() in HOST_SCHEMES:
            port = self.env.port
            host = self.rng.choice([
                f"127.0.0.1:{port}", f"127.0.0.1:{port}", f"user@127.0.0.1:{port}", f"u:p%40@127.0.0.1:{port}",
                f"@127.0.0.1:{port}", "127.0.0.1:abc", "127.0.0.1:99999", "127.0.0.1:-1", "[::1", "", "@@",
                f"127.0.0.1:{port}:{port}", f"127.0.0.1:{port}\u0661", f"127.0.0.1:{port}%20",
            ])
        elif scheme.lower() in ("file", "local"):
            host = self.rng.choice(["", "", "localhost"])
            if self.rng.random() < 0.5:
                return f"{scheme}://{self.rng.choice(self._existing_paths())}{self.rng.choice(['', '/', '/x'])}"
        else:
            host = self.rng.choice(["", "bucket", "b@c", "%", "\u05d0", self._segment()])
        path = self._rel_path(0, 5)
        if self.rng.random() < 0.3:
            path += self.rng.choice([".tar.gz", ".tgz", ".tar.gz?x=1", "?tf-hub-format=compressed", "#frag", "?@=/",
                                     "%00.tar.gz", "/..", "/../../etc"])
        return f"{scheme}://{host}/{path}"

    def _not_quite_url(self) -> str:
        return self.rng.choice(NOT_QUITE_SCHEMES) + self._rel_path(0, 4)

    def _existing_paths(self) -> list[str]:
        env = self.env
        return [str(p) for p in (env.not_a_model, env.empty_dir, env.text_file, env.junk_archive, env.empty_archive,
                                 env.missing, env.not_a_model / "notes.txt", env.text_file / "below-a-file")]

    def _path(self) -> str:
        """Paths under the fuzz directory (existing, missing, files that are no model) and relative ones."""
        roll = self.rng.random()
        if roll < 0.35:
            base = self.rng.choice(self._existing_paths())
            return base + self.rng.choice(["", "/", "/..", "/./", "/../notes.txt", "/x.tar.gz", "/" + self._segment()])
        if roll < 0.6:
            return f"{self.env.missing}/{self._rel_path()}"
        if roll < 0.8:
            return self.rng.choice(["./", "../", "~/", "~", "/", "./.."]) + self._rel_path(0, 4)
        if roll < 0.9:
            return str(self.env.root) + "/" + "n" * self.rng.choice([255, 256, 300])
        return f"{self.env.root}/{self._text(1, 12)}"

    def _known(self) -> str:
        """Handles that name something loadable: each loads once (TensorFlow work), so there are few."""
        return self.rng.choice(["pub/model", "pub/model/1", "pub/model@latest", str(self.env.model_dir),
                                f"file://{self.env.model_dir}"])

    def _dressed(self) -> str:
        """Another kind's handle with whitespace, a control character or a combining mark added somewhere."""
        kind = self.rng.choice([self._catalog_like, self._unknown_catalog, self._url, self._path, self._known])
        handle = kind()
        extra = self.rng.choice(WHITESPACE + CONTROL + list(COMBINING) + SURROGATES + ["\x00", "%00", "\u202e"])
        where = self.rng.choice(["start", "end", "both", "middle"])
        if where == "start":
            return extra + handle
        if where == "end":
            return handle + extra
        if where == "both":
            return extra + handle + extra
        cut = self.rng.randrange(len(handle) + 1)
        return handle[:cut] + extra + handle[cut:]


def network_safe(handle: str, port: int) -> bool:
    """True unless ``handle`` parses to a URL that could reach a server: any host but 127.0.0.1, any port but the
    closed ``port`` (a missing one means 80 or 21), or a scheme that may go online without a host (gs://,
    github://...). Unsure is unsafe."""
    try:
        parsed = parse(handle)
    except Exception:  # noqa: BLE001 - parse does no I/O; whatever it raised, the test reports
        return True
    if not isinstance(parsed, UrlHandle):
        return True  # catalog handles read the SQLite file; paths read the disk
    if parsed.protocol in OFFLINE_SCHEMES:
        return True
    try:
        parts = urlsplit(parsed.url)
        return parsed.protocol in HOST_SCHEMES and parts.hostname == "127.0.0.1" and parts.port == port
    except ValueError:
        return False


# --------------------------------------------------------------------------- the fuzz test

def _call(reg: registry.Registry, name: str, handle: str):
    if name == "load":
        return reg.load(handle, mode="tf2")
    return getattr(reg, name)(handle)


def _outline(error: BaseException) -> str:
    return f"{type(error).__module__}.{type(error).__qualname__}: {str(error)[:300]}"


def test_generated_handles_succeed_or_raise_registry_errors(sandboxed):
    env = sandboxed
    handles = HandleGenerator(SEED, env).handles(COUNT)
    assert len(handles) >= COUNT
    assert sum(len(h) >= 10_000 for h in handles) >= 50, "the generator must make very long handles"
    assert any("\x00" in h for h in handles) and any("\ud800" in h for h in handles)

    failures: list[str] = []
    outcomes: Counter[str] = Counter()
    started = time.monotonic()
    for handle in handles:
        for name in ("load", "resolve", "get_version"):
            try:
                _call(env.registry, name, handle)
                outcomes["ok"] += 1
            except RegistryError as error:
                outcomes[type(error).__name__] += 1
                if len(str(error)) > 2 * MAX_HANDLE_LENGTH:
                    failures.append(f"{name}({handle[:120]!r}...): a {len(str(error))}-character message; "
                                    f"an error must not echo a huge handle whole")
            except Exception as error:  # noqa: BLE001 - collecting exactly what must never escape
                failures.append(f"{name}({handle[:200]!r}) raised {_outline(error)}")
    elapsed = time.monotonic() - started

    assert not failures, (
        f"{len(failures)} of {3 * len(handles)} calls raised something other than a RegistryError "
        f"(outcomes {dict(outcomes)}, {elapsed:.0f} s); the first ones:\n" + "\n".join(failures[:8]))
    assert outcomes["ok"] >= 3, f"the known handles must load ({dict(outcomes)})"
    layers = {"HandleError", "ModelNotFound", "VersionNotFound", "ArtifactNotFound", "ArtifactError", "FormatError"}
    assert layers <= set(outcomes), f"the handles must reach every layer, not only the parser ({dict(outcomes)})"


def test_the_generator_is_deterministic_and_stays_on_loopback(fuzz_env):
    first = HandleGenerator(SEED, fuzz_env).handles(500)
    assert first == HandleGenerator(SEED, fuzz_env).handles(500)
    port = fuzz_env.port
    assert not network_safe("gs://bucket/model", port)
    assert not network_safe("github://org:repo@/m", port)
    assert not network_safe("http://example.org/m", port)
    assert not network_safe(f"http://127.0.0.1:{port}@example.org/m", port)
    assert not network_safe("http://127.0.0.1/m", port) and not network_safe("ftp://127.0.0.1:/m", port)
    assert network_safe(f"HTTP://127.0.0.1:{port}/m", port)


# --------------------------------------------------------------------------- the known defects, one by one

@pytest.mark.parametrize("name", ["load", "resolve"])
def test_an_unknown_scheme_is_a_handle_error_naming_it_and_the_known_ones(sandboxed, name):
    with pytest.raises(HandleError) as info:
        _call(sandboxed.registry, name, "nope://x/y")
    message = str(info.value)
    assert "'nope'" in message
    known = set(message.split("the known schemes are ", 1)[1].split(", "))
    assert {"file", "gs", "http", "https", "memory", "ftp"} <= known


def test_an_unknown_scheme_in_a_storage_url_is_a_handle_error():
    for call in (filesystem_for, list_directory):
        with pytest.raises(HandleError, match="'nope'"):
            call("nope://bucket/models")
    with pytest.raises(HandleError, match="'nope'"):
        with open_stream("NOPE://bucket/a.tar.gz"):
            pass


@pytest.mark.parametrize("path", ["m", "m.tar.gz"])
@pytest.mark.parametrize("scheme", ["ftp", "http", "https", "FTP"])
@pytest.mark.parametrize("name", ["load", "resolve"])
def test_a_refused_connection_is_an_artifact_error_naming_the_url(sandboxed, scheme, path, name):
    url = f"{scheme}://127.0.0.1:{sandboxed.port}/{path}"
    with pytest.raises(ArtifactError) as info:
        _call(sandboxed.registry, name, url)
    error = info.value
    assert not isinstance(error, ArtifactNotFound), "a refused connection is not a missing artifact"
    assert f"127.0.0.1:{sandboxed.port}/{path}" in str(error) and "cannot be reached" in str(error)
    assert error.__cause__ is not None  # the library's own error stays chained


def test_an_http_error_status_is_an_artifact_error_not_a_missing_artifact(http_server, tmp_path):
    http_server.add_file("models/m.tar.gz", b"anything")
    http_server.fail("models/m.tar.gz", 500)
    url = http_server.url("models/m.tar.gz")
    reg = registry.Registry(database_url=f"sqlite:///{tmp_path}/catalog.db", storage_url=str(tmp_path / "store"),
                            cache_dir=tmp_path / "cache")
    with pytest.raises(ArtifactError) as info:
        reg.resolve(url)
    assert not isinstance(info.value, ArtifactNotFound)
    assert "500" in str(info.value)


def test_an_unknown_mode_is_unknown_mode_and_a_value_error(sandboxed):
    with pytest.raises(UnknownMode) as info:
        sandboxed.registry.load("pub/model/1", mode="tf3")
    assert isinstance(info.value, ValueError) and isinstance(info.value, RegistryError)
    assert "tf3" in str(info.value)


def test_unknown_mode_is_exported_by_the_package():
    assert registry.UnknownMode is UnknownMode


@pytest.mark.parametrize("handle", ["pub/model\x00", "pub/\x00model/1", "\x00", "/tmp/a\x00b", "./a\x00",
                                    "file:///tmp/a\x00b", "memory://a\x00b/c.tar.gz", "http://127.0.0.1:1/\x00"])
@pytest.mark.parametrize("name", ["load", "resolve", "get_version"])
def test_a_handle_with_nul_is_a_handle_error(sandboxed, handle, name):
    with pytest.raises(HandleError, match="U\\+0000"):
        _call(sandboxed.registry, name, handle)


def test_a_path_object_with_nul_is_a_handle_error(sandboxed):
    with pytest.raises(HandleError, match="U\\+0000"):
        sandboxed.registry.resolve(Path("/tmp/a\x00b"))


def test_resolving_a_directory_in_no_known_format_is_a_format_error(sandboxed):
    for handle in (str(sandboxed.not_a_model), str(sandboxed.empty_dir), f"file://{sandboxed.not_a_model}"):
        with pytest.raises(FormatError):
            sandboxed.registry.resolve(handle)
        with pytest.raises(FormatError):
            sandboxed.registry.load(handle, mode="tf2")


def test_files_that_are_no_model_are_registry_errors(sandboxed):
    reg = sandboxed.registry
    with pytest.raises(HandleError, match="not a .tar.gz"):
        reg.resolve(str(sandboxed.text_file))
    with pytest.raises(ArtifactError):
        reg.resolve(str(sandboxed.junk_archive))
    with pytest.raises(ArtifactError):
        reg.resolve(str(sandboxed.empty_archive))
    with pytest.raises(ArtifactNotFound):
        reg.resolve(str(sandboxed.missing / "m"))


def test_a_huge_handle_is_refused_with_a_short_message(sandboxed):
    handle = "pub/" + "m" * 50_000
    with pytest.raises(HandleError) as info:
        sandboxed.registry.load(handle, mode="tf2")
    assert len(str(info.value)) < 1000


def test_the_real_model_still_loads(sandboxed):
    loaded = sandboxed.registry.load("pub/model/1", mode="tf2")
    assert loaded is not None
    assert os.path.isdir(sandboxed.registry.resolve(" pub/model@latest\n"))
