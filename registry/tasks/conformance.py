"""The conformance check run on publish: which common signatures a version implements, and refusing false claims.

Definitions come from every plugin's ``register_signature_definitions`` hook
(the built-ins' plugin included), collected per plugin manager, so a test's
fresh manager or a third-party plugin sees exactly the definitions registered
with it. Clashing task names are an error naming both plugins, never a silent
override.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping

from registry.adapter import ArtifactInfo
from registry.errors import PluginError, SignatureError
from registry.plugin_manager import gather
from registry.tasks.definitions import ModelFacts, SignatureDefinition

#: Key of the message TF1 image modules attach with their expected input size.
IMAGE_MODULE_INFO = "image_module_info"


class DefinitionSet:
    """The signature definitions registered through one plugin manager, by task name."""

    def __init__(self, pm):
        self._definitions: dict[str, SignatureDefinition] = {}
        self._sources: dict[str, str] = {}
        for definition, plugin_name in gather(pm, "register_signature_definitions"):
            self._add(definition, plugin_name)

    def _add(self, definition: object, plugin_name: str) -> None:
        if not isinstance(definition, SignatureDefinition):
            raise PluginError(f"plugin {plugin_name} registered {definition!r}, which is not a SignatureDefinition")
        name = definition.name
        if name in self._definitions:
            raise PluginError(f"task {name!r} is defined by both {self._sources[name]} and {plugin_name}; "
                              f"uninstall one or limit plugins with MODEL_REGISTRY_LOAD_PLUGINS")
        self._definitions[name] = definition
        self._sources[name] = plugin_name

    def __contains__(self, name: str) -> bool:
        return name in self._definitions

    def __iter__(self) -> Iterator[SignatureDefinition]:
        return iter(self._definitions.values())

    @property
    def names(self) -> list[str]:
        return list(self._definitions)

    def source(self, name: str) -> str:
        return self._sources[name]

    def get(self, name: str) -> SignatureDefinition:
        try:
            return self._definitions[name]
        except KeyError:
            raise SignatureError(f"unknown task {name!r}; the known tasks are {', '.join(self.names) or 'none'} "
                                 f"(plugins add more through the register_signature_definitions hook)") from None


def check_version(definitions: DefinitionSet, info: ArtifactInfo, *, claimed: Iterable[str] = ()) -> dict[str, Any]:
    """``{"details", "tasks"}`` for the catalog; ``SignatureError`` if a claimed task is not implemented."""
    claimed = list(dict.fromkeys(claimed))
    for name in claimed:
        definitions.get(name)  # an unknown claim fails before any checking
    facts = ModelFacts(format=info.format, signatures=tuple(info.signatures), metadata=dict(info.metadata),
                       image_module_info=image_module_info_sizes(info))
    tasks: list[dict] = []
    failures: list[str] = []
    for definition in definitions:
        is_claimed = definition.name in claimed
        verdict = definition.check(facts, claimed=is_claimed)
        tasks += [implementation.to_record() for implementation in verdict.implementations]
        if is_claimed and not verdict.implementations:
            failures.append(f"{definition.name}: {'; '.join(verdict.mismatches) or 'no signature implements it'}")
    if failures:
        raise SignatureError(
            f"the model does not implement the task{'s' if len(failures) > 1 else ''} it claims — "
            + " | ".join(failures)
            + ". Nothing was published: fix the model's signatures or drop the claim")
    return {"details": {"signature_check": {"definitions": definitions.names, "claimed": claimed}},
            "tasks": tasks}


def image_module_info_sizes(info: ArtifactInfo) -> dict[frozenset[str], tuple[int, int]]:
    """The ``image_module_info`` default image size by graph variant, as the format's adapter reported it.

    Adapters put it in ``info.metadata["image_module_info"]``: a size, a
    ``{"default_image_size": {...}}``, or such values keyed by comma-joined
    tags (the TF1 Hub adapter reads its attached messages). Nothing here reads
    a model directory, so conformance works the same for every format.
    """
    raw = info.metadata.get(IMAGE_MODULE_INFO)
    if raw is not None:
        return _sizes_from_metadata(raw, [frozenset(tags) for tags in info.tag_sets] or [frozenset()])
    return {}


def _sizes_from_metadata(raw: Any, variants: list[frozenset[str]]) -> dict[frozenset[str], tuple[int, int]]:
    size = _size_of(raw)
    if size is not None:
        return {tags: size for tags in variants}
    result = {}
    if isinstance(raw, Mapping):  # per graph variant, keyed by comma-joined tags ("" for the default one)
        for key, value in raw.items():
            size = _size_of(value)
            if size is not None:
                result[frozenset(t for t in str(key).split(",") if t)] = size
    elif isinstance(raw, list):  # [{"tags": [...], "default_image_size": {...}}, ...]
        for entry in raw:
            size = _size_of(entry)
            if size is not None and isinstance(entry, Mapping):
                result[frozenset(entry.get("tags") or ())] = size
    return result


def _size_of(value: Any) -> tuple[int, int] | None:
    if isinstance(value, Mapping):
        if "default_image_size" in value:
            return _size_of(value["default_image_size"])
        height, width = value.get("height"), value.get("width")
        if isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0:
            return height, width
        return None
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value):
        return int(value[0]), int(value[1])
    return None
