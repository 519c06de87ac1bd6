"""Finding models by task and swapping them: what ``Registry.search`` and ``Registry.interchangeable`` do.

The SQL lives with the catalog (``registry.catalog.search``); this module
adds what needs the task definitions: refusing an unknown task name rather
than answering nothing, and deciding whether one version can stand in for
another. Both take their collaborators — a catalog and the registered
definitions — and never a whole ``Registry``.

(The module is not called ``registry.search`` because importing a submodule of
that name would replace the ``registry.search`` function with the module.)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from registry.tasks.definitions import Implementation

if TYPE_CHECKING:
    from registry.catalog.interface import CatalogBackend
    from registry.catalog.models import VersionPublic
    from registry.catalog.search import SearchQuery, SearchResults
    from registry.tasks.conformance import DefinitionSet


def search(catalog: "CatalogBackend", definitions: "DefinitionSet", *, filters: Mapping[str, Any] | None = None,
           formats: "Collection[str] | None" = None, **criteria: Any) -> "list[VersionPublic] | list[str]":
    """For each model, its newest live version matching every criterion (see ``registry.catalog.search``).

    ``filters`` are equalities on filterable metadata fields, checked and normalised
    as the fields themselves are (``registry.catalog.models.checked_filters``);
    ``formats``, when given, are the format names a ``format`` criterion may take.
    """
    _check_names(definitions, criteria.get("task"), criteria.get("format"), formats)
    if filters:
        from registry.catalog.models import checked_filters

        criteria["filters"] = checked_filters(filters)
    return catalog.search(**criteria)


def find(catalog: "CatalogBackend", definitions: "DefinitionSet", query: "SearchQuery", *,
         formats: "Collection[str] | None" = None) -> "SearchResults":
    """A page of the search by need (``registry.catalog.search.find``), an unknown task or format refused as
    ``search`` refuses them: a typo, not an empty page."""
    _check_names(definitions, query.task, query.format, formats)
    return catalog.find(query)


def _check_names(definitions: "DefinitionSet", task: str | None, format: str | None,
                 formats: "Collection[str] | None") -> None:
    if task is not None:
        definitions.get(task)  # an unknown task is a typo, not an empty result
    if format is not None and formats is not None and format not in formats:
        from registry.errors import FormatError

        raise FormatError(f"unknown format {format!r}; the registered formats are "
                          f"{', '.join(sorted(formats)) or 'none'} (plugins add more through the "
                          f"register_adapters hook)")


@dataclass(frozen=True)
class Interchangeability:
    """Whether ``b`` can replace ``a`` for ``task``: truthy if so; ``reasons`` say why not, ``notes`` what to mind."""

    a: str
    b: str
    task: str | None
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return not self.reasons

    def __str__(self) -> str:
        if self:
            head = f"{self.b} can replace {self.a} as {self.task}"
            return head + (f" ({'; '.join(self.notes)})" if self.notes else "")
        return f"{self.b} cannot replace {self.a}" + (f" as {self.task}" if self.task else "") + \
            ": " + "; ".join(self.reasons)


def interchangeable(a: "VersionPublic", b: "VersionPublic", definitions: "DefinitionSet", *,
                    task: str | None = None) -> Interchangeability:
    """Whether version ``b`` can stand in for version ``a`` for ``task``.

    Without ``task``, the tasks both implement are tried in the order the
    definitions are registered, and the first that allows the swap is reported.
    What must match is the task definition's rule: an image feature vector
    swapped under a new head needs the same input image size (the head adapts
    to a different feature size); an image classifier also the same number of
    classes; text embeddings take strings, so only the embedding size differs.
    """
    tasks_a, tasks_b = _tasks_by_name(a), _tasks_by_name(b)
    if task is not None:
        definitions.get(task)
        candidates = [task]
    else:
        candidates = [d.name for d in definitions if d.name in tasks_a and d.name in tasks_b]
        if not candidates:
            return Interchangeability(a.handle, b.handle, None, reasons=(
                f"they implement no common task ({a.handle}: {_listing(tasks_a)}; "
                f"{b.handle}: {_listing(tasks_b)})",))
    first: Interchangeability | None = None
    for name in candidates:
        result = _compare(definitions.get(name), a, b, tasks_a.get(name, []), tasks_b.get(name, []))
        if result:
            return result
        first = first or result
    assert first is not None  # candidates is never empty: one task given, or the common ones (checked above)
    return first


def verdicts(a: "VersionPublic", b: "VersionPublic", definitions: "DefinitionSet") -> list[Interchangeability]:
    """Whether ``b`` can replace ``a`` for each task either implements, in the definitions' order: one verdict
    per task, so a task that fails is never hidden behind one that passes (224 vs 96 px: yes as a reusable
    SavedModel, no as an image feature vector)."""
    tasks_a, tasks_b = _tasks_by_name(a), _tasks_by_name(b)
    return [_compare(d, a, b, tasks_a.get(d.name, []), tasks_b.get(d.name, [])) for d in definitions
            if d.name in tasks_a or d.name in tasks_b]


def _compare(definition, a: "VersionPublic", b: "VersionPublic", impls_a, impls_b) -> Interchangeability:
    missing = [v.handle for v, impls in ((a, impls_a), (b, impls_b)) if not impls]
    if missing:
        return Interchangeability(a.handle, b.handle, definition.name, reasons=tuple(
            f"{handle} does not implement {definition.name}" for handle in missing))
    best = None
    for impl_a in impls_a:
        for impl_b in impls_b:
            check = definition.compare(impl_a, impl_b)
            if not check.reasons:
                return Interchangeability(a.handle, b.handle, definition.name, notes=check.notes)
            best = best or check
    assert best is not None  # neither list is empty (checked above), so a pair was compared
    return Interchangeability(a.handle, b.handle, definition.name, reasons=best.reasons, notes=best.notes)


def _tasks_by_name(version: "VersionPublic") -> dict[str, list]:
    grouped: dict[str, list] = {}
    for task in version.tasks:
        grouped.setdefault(task.task, []).append(Implementation(
            task=task.task, signature=task.signature, tags=frozenset(task.tags), output_dim=task.output_dim,
            # a pair also when the record came from JSON as a list (model_construct does not convert)
            image_size=(task.image_size[0], task.image_size[1]) if task.image_size else None,
            evidence=dict(task.evidence)))
    return grouped


def _listing(tasks: dict) -> str:
    return ", ".join(tasks) or "none"
