"""The catalog: which models exist, their numbered versions, aliases, signatures and lineage.

``models`` defines the tables and public records, ``store.Catalog`` reads and
writes them, ``schema`` checks and migrates the database (the migrations live in
``alembic/`` at the project root), ``engine`` sets up connections so concurrent
writers never fail, and ``records`` converts between rows and public records.
"""

from registry.catalog.models import ModelPublic, SignaturePublic, TaskPublic, VersionPublic
from registry.catalog.store import Catalog

__all__ = ["Catalog", "ModelPublic", "SignaturePublic", "TaskPublic", "VersionPublic"]
