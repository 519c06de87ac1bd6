"""Download counts: archives a server served, per version per day.

The server counts in memory (``registry.server.download_counter``) and adds its
counts here now and then and when it stops: one transaction per flush, whatever
the number of downloads, so serving an archive never writes to the database.
``add`` increments with an upsert (``INSERT ... ON CONFLICT DO UPDATE``), so
several server processes add to the same rows without losing a count.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, Optional

from sqlalchemy import BigInteger, Column, func
from sqlmodel import Field, SQLModel, col, select

from registry.catalog.models import ModelVersion, RegisteredModel

#: (publisher, model, version number) -> {day: downloads}
Counts = Mapping[tuple[str, str, int], Mapping[date, int]]


class DownloadCount(SQLModel, table=True):
    """How many times a version's archive was served on one day (UTC)."""

    __tablename__ = "download_count"

    version_id: int = Field(foreign_key="model_version.id", primary_key=True)
    day: date = Field(primary_key=True)
    count: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


def add(catalog, counts: Counts) -> int:
    """Add ``counts`` to the catalog's totals in one transaction; the number of downloads added.

    Versions the catalog does not know (deleted models cannot be, but a handle may be
    mistyped) are skipped: only archives that were served are counted, and those exist.
    """
    wanted = {key: days for key, days in counts.items() if any(days.values())}
    if not wanted:
        return 0
    added = 0
    with catalog._write() as session:
        ids = {}
        for publisher, model, number in wanted:
            found = session.exec(select(ModelVersion.id).join(
                RegisteredModel, col(RegisteredModel.id) == col(ModelVersion.model_id)).where(
                RegisteredModel.publisher == publisher, RegisteredModel.name == model,
                ModelVersion.version == number)).first()
            if found is not None:
                ids[(publisher, model, number)] = found
        from sqlalchemy.dialects import postgresql, sqlite

        insert: Any = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        table = SQLModel.metadata.tables[DownloadCount.__tablename__]
        for key, version_id in ids.items():
            for day, n in wanted[key].items():
                if n <= 0:
                    continue
                statement = insert(table).values(version_id=version_id, day=day, count=n)
                session.execute(statement.on_conflict_do_update(
                    index_elements=["version_id", "day"], set_={"count": table.c.count + statement.excluded.count}))
                added += n
    return added


def totals(session, version_ids: list[int], *, since: Optional[date] = None) -> dict[int, int]:
    """{version id: downloads} (since ``since``, inclusive, if given)."""
    if not version_ids:
        return {}
    statement = (select(DownloadCount.version_id, func.sum(DownloadCount.count))
                 .where(col(DownloadCount.version_id).in_(version_ids)).group_by(col(DownloadCount.version_id)))
    if since is not None:
        statement = statement.where(col(DownloadCount.day) >= since)
    return {version_id: int(total) for version_id, total in session.exec(statement)}
