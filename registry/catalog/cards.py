"""Editing cards in a database catalog: a version's card (and the fields it fills) and a publisher's card.

A card edit changes catalog rows only: the artifact, its sha256 and its URL stay as
they were. Each edit is one write transaction that ends with ``record_change``
(action ``card.set``), so the audit entry commits with it; the entry names the
card's sha256 and size and the fields it changed, never the text itself. An edit
that changes nothing records nothing.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from sqlmodel import select

from registry.catalog import records
from registry.catalog.changes import record_change
from registry.catalog.models import (
    PublisherCard,
    PublisherCardPublic,
    VersionMetadata,
    VersionPublic,
    checked_card,
    utcnow,
)
from registry.catalog.search import index_version
from registry.errors import MetadataError
from registry.handles import catalog_handle, validate_name

if TYPE_CHECKING:
    from registry.catalog.store import Catalog

#: The version fields a card's front matter may fill (``registry.cards.parse``).
CARD_FIELDS = ("license", "tags", "datasets", "language", "base_model", "citation")
ACTION = "card.set"


def card_update(current: dict[str, Any], card: str | None) -> VersionMetadata:
    """A version's metadata ``current`` with ``card`` as its card, validated.

    The fields the new card names take its values; a field the old card named (and still has the old card's
    value) but the new one does not goes back to unset; every other field (a licence given on its own, a
    description) is kept.
    """
    from registry.cards.parse import parse_card

    old_card = current.get("card")
    named = parse_card(card).fields if card else {}
    old_named = _checked_quietly(parse_card(old_card).fields) if old_card else {}
    values = {**current, "card": card}
    for name in CARD_FIELDS:
        if name in named:
            values[name] = named[name]
        elif name in old_named and values.get(name) == old_named[name]:
            values[name] = VersionMetadata.model_fields[name].get_default(call_default_factory=True)
    return VersionMetadata.checked(values)


def _checked_quietly(fields: dict[str, Any]) -> dict[str, Any]:
    """What an old card's fields were recorded as (a value no longer valid recorded nothing)."""
    checked = {}
    for name, value in fields.items():
        try:
            checked[name] = getattr(VersionMetadata.checked({name: value}), name)
        except MetadataError:
            pass
    return checked


def card_state(card: str | None, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """A card as the audit log describes it: its sha256 and size (and the fields it changed), not its text."""
    state: dict[str, Any] = {"card_sha256": hashlib.sha256(card.encode("utf-8")).hexdigest() if card else None,
                             "card_bytes": len(card.encode("utf-8")) if card else 0}
    if fields:
        state["fields"] = fields
    return state


class CardStore:
    """Card edits on one database catalog (``registry.catalog.store.Catalog``)."""

    def __init__(self, catalog: "Catalog"):
        self.catalog = catalog

    def set_version_card(self, handle, card: str | None) -> VersionPublic:
        """Give the version ``handle`` names the card ``card`` (None or blank: no card); its record after."""
        parsed = catalog_handle(handle)
        with self.catalog._write() as session:
            row, model = self.catalog._resolve(session, parsed, include_deleted=False)
            current = {name: getattr(row, name) for name in VersionMetadata.model_fields}
            updated = card_update(current, card).metadata_values()
            changed = {name: value for name, value in updated.items() if value != current[name]}
            if changed:
                for name, value in changed.items():
                    setattr(row, name, value)
                session.add(row)
                session.flush()
                assert row.id is not None  # a row read from the catalog
                index_version(session, row.id)  # the card's words replace the old card's (registry.catalog.search)
                shown = {name: value for name, value in changed.items() if name in CARD_FIELDS}
                record_change(session, ACTION, f"{model.publisher}/{model.name}/{row.version}",
                              publisher=model.publisher, model=model.name,
                              before=card_state(current["card"], {name: current[name] for name in shown}),
                              after=card_state(updated["card"], shown))
            return records.version_records(session, [(row, model)])[0]

    def publisher_card(self, publisher: str) -> PublisherCardPublic:
        """The publisher's card (``card`` None when it has none)."""
        validate_name(publisher, "publisher")
        with self.catalog._read() as session:
            row = session.get(PublisherCard, publisher)
            return _public(publisher, row)

    def set_publisher_card(self, publisher: str, card: str | None) -> PublisherCardPublic:
        """Set (or with None or blank text, remove) the publisher's card."""
        validate_name(publisher, "publisher")
        try:
            card = checked_card(card) if card is not None else None
        except ValueError as error:
            raise MetadataError(f"card: {error}") from None
        with self.catalog._write() as session:
            row = session.exec(select(PublisherCard).where(PublisherCard.publisher == publisher)
                               .with_for_update()).first()
            before = row.card if row is not None else None
            if before == card:
                return _public(publisher, row)
            if card is None:
                assert row is not None
                session.delete(row)
                row = None
            elif row is None:
                row = PublisherCard(publisher=publisher, card=card)
                session.add(row)
            else:
                row.card, row.updated_at = card, utcnow()
                session.add(row)
            session.flush()
            record_change(session, ACTION, f"publisher:{publisher}", publisher=publisher,
                          before=card_state(before), after=card_state(card))
            return _public(publisher, row)


def _public(publisher: str, row: PublisherCard | None) -> PublisherCardPublic:
    if row is None:
        return PublisherCardPublic(publisher=publisher)
    return PublisherCardPublic(publisher=publisher, card=row.card, updated_at=row.updated_at)
