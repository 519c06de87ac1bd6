"""Legacy model handles: tfhub.dev (and its mirror and bucket) and Kaggle, each family in one canonical form.

Code written for TF Hub names a model many ways, and the catalog must know them all as one. Two families:

``tfhub``
    ``https://tfhub.dev/<path>/<version>``: the canonical form. Also read as this: ``http://``, no scheme,
    ``www.``, a trailing slash, ``?tf-hub-format=compressed`` (or ``=uncompressed``), the China mirror
    ``hub.tensorflow.google.cn/<path>/<version>``, and the bucket tensorflow_hub downloaded from,
    ``storage.googleapis.com/tfhub-modules/<path>/<version>.tar.gz`` (and ``gcs.tensorflow.google.cn``'s).
    ``<path>`` is ``publisher/model[/more...]`` exactly as written (tfhub.dev paths are case-sensitive:
    ``tensorflow/bert_en_uncased_L-12_H-768_A-12``); without ``/<version>`` the handle means the newest.

``kaggle``
    ``https://www.kaggle.com/models/<owner>/<model>/<framework>/<variation>/<version>``: the canonical form,
    lower-cased (Kaggle's slugs are; its URLs write ``tensorFlow2`` for the framework kagglehub calls
    ``tensorflow2``). Also read as this: Kaggle's long URL
    ``kaggle.com/models/<o>/<m>/frameworks/<f>/variations/<v>/versions/<N>``, either URL without ``www.`` or
    with ``http://``, and the kagglehub handle ``<o>/<m>/<f>/<v>[/<N>]`` (four or five parts, so never a
    catalog handle). Without a version it means the newest.

Anything else shaped like one of these (a tfhub.dev URL without a model path, a bucket object that is not a
``tfhub-modules`` archive, a query other than ``tf-hub-format``) is a ``LegacyHandleError``; a URL of another
host, or a bucket object outside ``tfhub-modules/``, is simply not a legacy handle (``is_legacy_handle`` is
False) and keeps its URL meaning.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import parse_qsl, urlsplit

from registry.errors import LegacyHandleError

TFHUB = "tfhub"
KAGGLE = "kaggle"
#: Hosts whose paths are tfhub.dev model paths (after dropping ``www.``).
TFHUB_HOSTS = ("tfhub.dev", "hub.tensorflow.google.cn")
#: Buckets that held tfhub.dev's archives, under ``BUCKET_PREFIX``.
BUCKET_HOSTS = ("storage.googleapis.com", "gcs.tensorflow.google.cn")
BUCKET_PREFIX = "tfhub-modules/"
KAGGLE_HOSTS = ("kaggle.com",)
#: The only query a legacy URL may carry: tensorflow_hub adds it to ask for the archive.
FORMAT_QUERY = "tf-hub-format"
CANONICAL_TFHUB = "https://tfhub.dev/"
CANONICAL_KAGGLE = "https://www.kaggle.com/models/"
SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
VERSION = re.compile(r"[1-9][0-9]{0,9}")
MAX_VERSION = 2**31 - 1
#: Canonical forms stay within the catalog column (1024 characters).
MAX_LENGTH = 960

SHAPES = ("a legacy handle is https://tfhub.dev/<publisher>/<model>[/<version>] (also http://, www., a trailing "
          "slash, ?tf-hub-format=compressed, hub.tensorflow.google.cn), "
          "https://storage.googleapis.com/tfhub-modules/<publisher>/<model>/<version>.tar.gz, "
          "https://www.kaggle.com/models/<owner>/<model>/<framework>/<variation>[/<version>] (or the long "
          ".../frameworks/<f>/variations/<v>/versions/<N>), or a kagglehub handle "
          "<owner>/<model>/<framework>/<variation>[/<version>]")


class LegacyHandle(NamedTuple):
    """A parsed legacy handle: its family, its path within the family, and its version (None: the newest)."""

    family: str
    #: tfhub: ``publisher/model[/more]``; kaggle: ``owner/model/framework/variation``.
    path: str
    version: int | None = None

    @property
    def unversioned(self) -> str:
        """The canonical form without a version: what "the newest" is asked by."""
        return (CANONICAL_TFHUB if self.family == TFHUB else CANONICAL_KAGGLE) + self.path

    @property
    def kagglehub_handle(self) -> str | None:
        """``owner/model/framework/variation[/N]`` for the kaggle family, as kagglehub takes it."""
        if self.family != KAGGLE:
            return None
        return self.path + (f"/{self.version}" if self.version is not None else "")

    def __str__(self) -> str:
        return self.unversioned + (f"/{self.version}" if self.version is not None else "")


def parse_legacy_handle(text: str) -> LegacyHandle:
    """``text`` parsed as a legacy handle, or ``LegacyHandleError`` saying why not (with the shapes)."""
    found = _parse(text)
    if found is None:
        raise LegacyHandleError(f"{_shown(text)} is not a legacy handle; {SHAPES}")
    return found


def normalise_legacy_handle(text: str) -> str:
    """The canonical form of any spelling of a legacy handle (see the module's docstring); else
    ``LegacyHandleError``."""
    return str(parse_legacy_handle(text))


def normalise_all(values) -> list[str]:
    """Each of ``values`` (a list of legacy handles; one string is refused, not split into characters) in
    canonical form, each once, in the order given."""
    if isinstance(values, str) or not all(isinstance(value, str) for value in values):
        raise LegacyHandleError(f"legacy handles are given as a list of strings, not {values!r:.80}")
    return list(dict.fromkeys(normalise_legacy_handle(value) for value in values))


def is_legacy_handle(text: object) -> bool:
    """True when ``text`` normalises; a URL of any other host (or malformed text) is False."""
    if not isinstance(text, str):
        return False
    try:
        return _parse(text) is not None
    except LegacyHandleError:
        return False


def looks_legacy(text: object) -> bool:
    """True when ``text`` is shaped like a legacy handle (a tfhub.dev or Kaggle model URL, a ``tfhub-modules``
    bucket object, four or five slash-separated parts), well-formed or not: such text is read as a legacy
    handle, so a malformed one is a ``LegacyHandleError`` rather than a URL to fetch."""
    if not isinstance(text, str):
        return False
    try:
        return _parse(text) is not None
    except LegacyHandleError:
        return True


def spellings(handle: str) -> list[str]:
    """Every spelling of ``handle`` that code hands tensorflow_hub, the canonical one first.

    tensorflow_hub names a cache entry by the sha1 of the handle exactly as given, so an exported cache
    (``export tfhub-cache``) needs an entry for each: ``https://`` and ``http://``, with and without ``www.``,
    with and without a trailing slash; for the tfhub family also the China mirror and the bucket archive.
    """
    parsed = parse_legacy_handle(handle)
    canonical = str(parsed)
    tail = canonical.split("://", 1)[1].split("/", 1)[1]  # the path after the host
    host = "tfhub.dev" if parsed.family == TFHUB else "kaggle.com"
    found = [canonical]
    for scheme in ("https", "http"):
        for prefix in ("", "www."):
            for slash in ("", "/"):
                spelling = f"{scheme}://{prefix}{host}/{tail}{slash}"
                if spelling not in found:
                    found.append(spelling)
    if parsed.family == TFHUB:
        for slash in ("", "/"):
            found.append(f"https://hub.tensorflow.google.cn/{tail}{slash}")
        if parsed.version is not None:
            found.append(f"https://storage.googleapis.com/{BUCKET_PREFIX}{parsed.path}/{parsed.version}.tar.gz")
    return found


# -- parsing --------------------------------------------------------------------------------------------------

def _shown(text: str) -> str:
    return repr(text) if len(text) <= 100 else f"{text[:100]!r}... ({len(text)} characters)"


def _bad(text: str, why: str) -> LegacyHandleError:
    return LegacyHandleError(f"{_shown(text)} is not a valid legacy handle: {why}; {SHAPES}")


def _parse(original: str) -> LegacyHandle | None:
    """The handle, None when ``original`` is not shaped like one, ``LegacyHandleError`` when it is but is bad."""
    if not isinstance(original, str):
        return None
    text = original.strip()
    if not text or len(text) > MAX_LENGTH or any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text):
        return None
    scheme, sep, rest = text.partition("://")
    if not sep:
        if "/" not in text or ":" in text or text.startswith(("/", ".", "~")):
            return None
        first = text.split("/", 1)[0].lower()
        if _host_family(first.removeprefix("www.")) is None:
            return _kagglehub(text, original)
        scheme, rest = "https", text
    if scheme.lower() not in ("http", "https"):
        return None
    try:
        parts = urlsplit(f"https://{rest}")
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").removeprefix("www.")
    family = _host_family(host)
    if family is None:
        return None
    path = parts.path.strip("/")
    if family == "bucket" and not path.startswith(BUCKET_PREFIX):
        return None  # another object in the same bucket service: an ordinary URL
    if family == KAGGLE and not path.startswith("models/"):
        return None  # a Kaggle page that is no model (datasets, users...)
    if parts.username or parts.password or port not in (None, 80, 443):
        raise _bad(original, "it names a user or a port; legacy hosts are named alone")
    if parts.fragment:
        raise _bad(original, "it has a '#' fragment")
    for name, _value in parse_qsl(parts.query, keep_blank_values=True):
        if name != FORMAT_QUERY:
            raise _bad(original, f"the query {name!r} is none of tensorflow_hub's (only {FORMAT_QUERY}=...)")
    segments = path.split("/") if path else []
    if family == "bucket":
        return _bucket(segments[1:], original)
    if family == KAGGLE:
        return _kaggle(segments[1:], original)
    return _tfhub(segments, original)


def _host_family(host: str) -> str | None:
    if host in TFHUB_HOSTS:
        return TFHUB
    if host in BUCKET_HOSTS:
        return "bucket"
    if host in KAGGLE_HOSTS:
        return KAGGLE
    return None


def _segments(segments: list[str], original: str) -> list[str]:
    for segment in segments:
        if not SEGMENT.fullmatch(segment):
            raise _bad(original, f"the path part {segment!r} is not a name (letters, digits, '.', '_', '-'; "
                                 f"no empty parts)")
    return segments


def _version(text: str, original: str) -> int:
    if not VERSION.fullmatch(text) or int(text) > MAX_VERSION:
        raise _bad(original, f"the version {text!r} is not a whole number from 1 without leading zeros")
    return int(text)


def _tfhub(segments: list[str], original: str) -> LegacyHandle:
    version = None
    if segments and segments[-1].isdigit():
        version = _version(segments[-1], original)
        segments = segments[:-1]
    if len(segments) < 2:
        raise _bad(original, "a tfhub.dev handle names a publisher and a model: tfhub.dev/<publisher>/<model>")
    return LegacyHandle(TFHUB, "/".join(_segments(segments, original)), version)


def _bucket(segments: list[str], original: str) -> LegacyHandle:
    if not segments or not segments[-1].endswith(".tar.gz"):
        raise _bad(original, "a tfhub-modules bucket object is <publisher>/<model>/<version>.tar.gz")
    segments = [*segments[:-1], segments[-1].removesuffix(".tar.gz")]
    if not segments[-1].isdigit():
        raise _bad(original, "a tfhub-modules archive is named by its version: <publisher>/<model>/<version>.tar.gz")
    handle = _tfhub(segments, original)
    return handle


def _kaggle(segments: list[str], original: str) -> LegacyHandle:
    # The long URL: <o>/<m>/frameworks/<f>/variations/<v>[/versions/<N>]
    if len(segments) >= 6 and segments[2].lower() == "frameworks" and segments[4].lower() == "variations":
        if len(segments) == 6:
            segments = [segments[0], segments[1], segments[3], segments[5]]
        elif len(segments) == 8 and segments[6].lower() == "versions":
            segments = [segments[0], segments[1], segments[3], segments[5], segments[7]]
        else:
            raise _bad(original, "a long Kaggle model URL ends .../variations/<variation>[/versions/<N>]")
    return _kaggle_parts(segments, original, "https://www.kaggle.com/models/<owner>/<model>/<framework>/"
                                              "<variation>[/<version>]")


#: Kaggle's model frameworks (kagglesdk 0.1.38's ``ModelFramework``), as a handle spells them, lower-cased: a bare
#: ``owner/model/framework/variation`` is a kagglehub handle only with one of these, so that a mistyped catalog
#: handle (``p/m/1/2``) stays a handle error rather than a Kaggle model the catalog has not heard of.
KAGGLE_FRAMEWORKS = frozenset({
    "tensorflow1", "tensorflow2", "tflite", "tfjs", "pytorch", "jax", "flax", "pax", "maxtext", "gemmacpp", "ggml",
    "gguf", "coral", "scikitlearn", "mxnet", "onnx", "keras", "transformers", "api", "other", "tensorrtllm",
    "triton", "vllm"})


def _kagglehub(text: str, original: str) -> LegacyHandle | None:
    segments = text.strip("/").split("/")
    if len(segments) not in (4, 5) or segments[2].lower().replace("_", "").replace("-", "") not in KAGGLE_FRAMEWORKS:
        return None  # a catalog handle (two or three parts), a mistyped one, or nothing this module knows
    return _kaggle_parts(segments, original, "<owner>/<model>/<framework>/<variation>[/<version>]")


def _kaggle_parts(segments: list[str], original: str, shape: str) -> LegacyHandle:
    if len(segments) not in (4, 5):
        raise _bad(original, f"a Kaggle model variation is {shape}")
    version = _version(segments[4], original) if len(segments) == 5 else None
    names = _segments([segment.lower() for segment in segments[:4]], original)
    return LegacyHandle(KAGGLE, "/".join(names), version)
