"""A card rendered: bounded, inert HTML for the pages, and rich text for the terminal.

Anyone with a publish token writes cards, and everyone who reads the catalog sees
them, so a card is treated as hostile:

* Markdown is parsed by markdown-it-py (CommonMark, plus tables and strikethrough)
  with raw HTML *off*: ``<script>``, ``<style>``, ``<img onerror=...>`` in a card are
  shown as the text they are, never as markup.
* The HTML it makes then passes nh3 (the ammonia sanitizer) with an allow-list of
  tags and attributes; links keep only ``http``, ``https`` and ``mailto`` URLs (and
  relative ones), so ``javascript:`` and ``data:`` links and images are dropped, and
  links get ``rel="nofollow noopener noreferrer"``.
* The pages' Content-Security-Policy (``registry.server.web_pages.SECURITY_HEADERS``)
  allows no inline script or style and no other origin's images: even markup that
  got through could not run or call out.
* Size is bounded: at most ``MAX_SOURCE_CHARS`` of the card are rendered (a note
  says how much more there is and where the whole card is), at most
  ``MAX_TABLE_ROWS`` rows of each table, and headings are shifted under the page's
  own (a card's ``#`` is the page's ``<h3>``).

Rendering a card costs milliseconds for tens of kilobytes; the result is kept per
card text (``render_card`` is cached), so a page shown again does not pay twice.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from registry.cards.parse import parse_card

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

#: Characters of a card's Markdown rendered on a page; the rest is named, not shown.
MAX_SOURCE_CHARS = 100_000
#: Body rows of one table rendered; the rest are counted in a note under it.
MAX_TABLE_ROWS = 100
#: A card's headings start at this level (the page has its ``<h1>`` and its sections' ``<h2>``).
FIRST_HEADING_LEVEL = 3
#: Cards rendered and kept (by text).
CACHED_CARDS = 64

ALLOWED_TAGS = {"a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h3", "h4", "h5", "h6", "hr", "i", "img",
                "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
                "div"}
# No style attributes (the CSP refuses inline styles) and no classes but the table box's.
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"}}
URL_SCHEMES = {"http", "https", "mailto"}


@dataclass(frozen=True)
class RenderedCard:
    """A card as a page shows it: sanitized HTML and what was left out."""

    html: str
    #: Characters of the card's Markdown not rendered (0: all of it).
    chars_left_out: int = 0
    #: Table rows not rendered, all tables together.
    rows_left_out: int = 0


def render_card(text: str) -> RenderedCard:
    """``text`` (a card, front matter and all) as bounded, sanitized HTML."""
    return _render(text)


@functools.lru_cache(maxsize=CACHED_CARDS)
def _render(text: str) -> RenderedCard:
    import nh3

    body = parse_card(text).body
    left_out = 0
    if len(body) > MAX_SOURCE_CHARS:
        cut = body.rfind("\n", 0, MAX_SOURCE_CHARS)
        cut = cut if cut > MAX_SOURCE_CHARS // 2 else MAX_SOURCE_CHARS
        left_out, body = len(body) - cut, body[:cut]
    md = _markdown()
    tokens = md.parse(body)
    tokens, rows_left_out = _bounded_tables(tokens)
    _shift_headings(tokens)
    html = md.renderer.render(tokens, md.options, {})
    clean = nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes=URL_SCHEMES,
                      link_rel="nofollow noopener noreferrer", strip_comments=True,
                      allowed_classes={"div": {"card-table"}})
    return RenderedCard(clean, left_out, rows_left_out)


@functools.cache
def _markdown() -> "MarkdownIt":
    from markdown_it import MarkdownIt

    # Raw HTML off: a card's tags are text. Typographer and linkify off: what is written is what shows.
    md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    md.add_render_rule("registry_raw", _render_raw)
    return md


def _bounded_tables(tokens: list["Token"]) -> tuple[list["Token"], int]:
    """``tokens`` with each table's body cut to ``MAX_TABLE_ROWS`` rows (a last row says how many more), each table
    wrapped in a box that scrolls sideways on a narrow screen; and the number of rows left out."""
    kept: list[Token] = []
    rows = skipped = total = 0
    in_body = False
    for token in tokens:
        if token.type == "table_open":
            kept.append(_raw('<div class="card-table">'))
        elif token.type == "tbody_open":
            in_body, rows, skipped = True, 0, 0
        elif token.type == "tbody_close":
            in_body = False
            if skipped:
                kept.append(_raw(f"<tr><td>… {skipped:,} more row{'s' if skipped != 1 else ''} not shown</td></tr>"))
                total += skipped
        elif in_body and token.type == "tr_open":
            rows += 1
        if in_body and rows > MAX_TABLE_ROWS:
            if token.type == "tr_open":
                skipped += 1
            continue
        kept.append(token)
        if token.type == "table_close":
            kept.append(_raw("</div>"))
    return kept, total


def _raw(html: str) -> "Token":
    """A token the renderer writes as it is: only our own markup (with raw HTML off, a card makes none)."""
    from markdown_it.token import Token

    token = Token("registry_raw", "", 0)
    token.content = html
    return token


def _shift_headings(tokens: list["Token"]) -> None:
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(6, int(token.tag[1]) + FIRST_HEADING_LEVEL - 1)}"


def _render_raw(self: Any, tokens: list["Token"], idx: int, options: Any, env: Any) -> str:
    return tokens[idx].content


# -- the terminal ---------------------------------------------------------------------------------------------------

#: Characters of a card printed by ``model-registry show`` (the rest is named).
MAX_TERMINAL_CHARS = 20_000


def terminal_card(text: str) -> tuple[Any, int]:
    """(a ``rich`` renderable of the card's body, characters left out). Raw HTML in it is printed as text."""
    from rich.markdown import Markdown

    body = parse_card(text).body
    left_out = max(0, len(body) - MAX_TERMINAL_CHARS)
    body = body[:MAX_TERMINAL_CHARS] if left_out else body
    renderable = Markdown(body, hyperlinks=False)
    # rich parses with raw HTML on and then drops it; parsed as the pages parse it, HTML is printed as the text it is.
    renderable.parsed = _markdown().parse(body)
    return renderable, left_out
