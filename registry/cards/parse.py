"""A model card's structured fields, read from the card text itself.

Two conventions are read, so that a card written for either hub works here unchanged:

* Hugging Face's model card: YAML front matter between ``---`` lines at the top
  (``huggingface_hub.ModelCardData``: ``license``, ``language``, ``tags``, ``datasets``,
  ``base_model``, ``pipeline_tag``, ...). ``citation`` is read from the front matter, or
  else from the first fenced block under a "Citation" heading (the card template's place
  for BibTeX).
* tfhub.dev's documentation (``assets/docs`` of tensorflow/tfhub.dev): metadata lines
  ``<!-- key: value -->`` (``asset-path``, ``task``/``module-type``, ``network-architecture``,
  ``dataset``, ``language``, ``license``, ``fine-tunable``, ``format``, ``parent-model``...).
  They are HTML comments, so a Markdown renderer already hides them.

What the card says is a suggestion for the version's fields (``VersionMetadata``):
``card_fields`` returns only the keys the card names, as raw values that the fields'
own validators then check. YAML is imported only when a card has front matter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from registry.errors import MetadataError

#: Front matter: the card's very first line is ``---``; it ends at the next line that is ``---`` (or ``...``).
_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)(?:\r?\n)?^(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)",
                           re.DOTALL | re.MULTILINE)
#: A tfhub.dev metadata line: ``<!-- key: value -->`` alone on its line.
_TFHUB_LINE = re.compile(r"^[ \t]*<!--[ \t]*([a-z][a-z0-9-]*)[ \t]*:[ \t]*(.*?)[ \t]*-->[ \t]*$", re.MULTILINE)
#: A heading named Citation (any level, "Citation [optional]" too) and the first fenced block after it.
_CITATION_HEADING = re.compile(r"^#{1,6}[ \t]+Citation\b.*$", re.MULTILINE | re.IGNORECASE)
_NEXT_HEADING = re.compile(r"^#{1,6}[ \t]", re.MULTILINE)
_FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n(.*?)^[ \t]*\1", re.MULTILINE | re.DOTALL)
#: tfhub.dev keys that describe what the model is; recorded as tags (``task`` is the newer ``module-type``).
TFHUB_TAG_KEYS = ("task", "module-type", "network-architecture")
#: Licence values of Hugging Face's list that name no SPDX licence: the field stays unset, the card says it.
NOT_SPDX = frozenset({"other", "unknown", "unlicense-other"})


@dataclass
class ParsedCard:
    """The card split into what renders (``body``) and what it says about the version (``fields``)."""

    body: str
    #: Raw values for ``VersionMetadata`` fields, only those the card names.
    fields: dict[str, Any] = field(default_factory=dict)
    #: Which convention supplied them: "front matter", "tfhub.dev" or None.
    convention: str | None = None


def split_front_matter(text: str) -> tuple[dict[str, Any] | None, str]:
    """(the YAML front matter as a mapping, or None; the Markdown after it)."""
    match = _FRONT_MATTER.match(text)
    if match is None:
        return None, text
    import yaml

    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 2})" if mark is not None else ""
        raise MetadataError(f"card: its YAML front matter is not valid YAML{where}: "
                            f"{getattr(error, 'problem', None) or error}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MetadataError(f"card: its front matter must be a YAML mapping (key: value lines), not "
                            f"{type(data).__name__}")
    return data, text[match.end():]


def parse_card(text: str) -> ParsedCard:
    """The card's body and the fields its front matter (or tfhub.dev metadata lines) name."""
    front, body = split_front_matter(text)
    if front is not None:
        return ParsedCard(body, _front_matter_fields(front, body), "front matter")
    tfhub = tfhub_metadata(text)
    if tfhub:
        # The metadata lines are for machines (tfhub.dev hid them as HTML comments): the body renders without them.
        return ParsedCard(_TFHUB_LINE.sub("", body), _tfhub_fields(tfhub), "tfhub.dev")
    citation = _citation_section(body)
    return ParsedCard(body, {"citation": citation} if citation else {})


def tfhub_metadata(text: str) -> dict[str, list[str]]:
    """Every ``<!-- key: value -->`` line of a tfhub.dev document, outside fenced code: {key: [values]}."""
    found: dict[str, list[str]] = {}
    for match in _TFHUB_LINE.finditer(_without_fences(text)):
        value = match.group(2).strip()
        if value:
            found.setdefault(match.group(1), []).append(value)
    return found


def _without_fences(text: str) -> str:
    """``text`` with fenced code blocks blanked (a card that shows a metadata line as an example says nothing)."""
    return re.sub(r"^[ \t]*(```|~~~).*?^[ \t]*\1[^\n]*$", "", text, flags=re.MULTILINE | re.DOTALL)


def _front_matter_fields(data: dict[str, Any], body: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if "license" in data and data["license"] is not None:
        license = str(data["license"]).strip()
        if license.lower() not in NOT_SPDX:
            fields["license"] = license
    tags = _strings(data.get("tags"), "tags")
    if data.get("pipeline_tag"):
        tags.append(str(data["pipeline_tag"]))
    if tags:
        fields["tags"] = tags
    for key in ("datasets", "language"):
        values = _strings(data.get(key), key)
        if values:
            fields[key] = values
    base = _strings(data.get("base_model"), "base_model")
    if base:
        fields["base_model"] = base[0]  # a merge names several; the first is its main parent, the card keeps all
    citation = data.get("citation")
    citation = str(citation).strip() if citation else _citation_section(body)
    if citation:
        fields["citation"] = citation
    return fields


def _tfhub_fields(meta: dict[str, list[str]]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    tags = [value for key in TFHUB_TAG_KEYS for value in meta.get(key, ())]
    if tags:
        fields["tags"] = tags
    if "dataset" in meta:
        fields["datasets"] = meta["dataset"]
    if "language" in meta:
        fields["language"] = meta["language"]
    if "license" in meta and meta["license"][0].lower() not in NOT_SPDX:
        fields["license"] = meta["license"][0]
    if "parent-model" in meta:
        fields["base_model"] = meta["parent-model"][0]
    return fields


def _citation_section(body: str) -> str | None:
    """The first fenced block of the card's Citation section, if it has one."""
    heading = _CITATION_HEADING.search(body)
    if heading is None:
        return None
    section = body[heading.end():]
    following = _NEXT_HEADING.search(section)
    block = _FENCE.search(section[:following.start()] if following else section)
    return (block.group(2).strip() or None) if block else None


def _strings(value: Any, key: str) -> list[str]:
    """A front-matter value that may be one string or a list of them (Hugging Face allows both)."""
    if value is None:
        return []
    if isinstance(value, (str, int, float)):
        return [str(value)]
    if isinstance(value, list) and all(isinstance(item, (str, int, float)) for item in value):
        return [str(item) for item in value]
    raise MetadataError(f"card: front matter {key!r} must be a string or a list of strings, not "
                        f"{type(value).__name__}")
