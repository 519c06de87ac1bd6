"""What the web catalog's pages show, built from catalog records: usage code, signature groups, matrix rows.

Plain functions over ``VersionPublic`` records and matrix ``Cell``s, with no
request or template in sight, so each is easy to test and the templates stay
free of logic. Format-specific usage code comes from the format's adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from registry.adapter import FormatAdapter, UsageSnippet, registry_usage
from registry.handles import COMPRESSED_QUERY

if TYPE_CHECKING:
    from registry.plugin_manager import AdapterSet

#: One copyable block of usage code (an adapter's ``usage`` returns them too).
Snippet = UsageSnippet


@dataclass
class SignatureGroup:
    """The signatures of one graph variant (tag set)."""

    tags: list[str]
    signatures: list[Any] = field(default_factory=list)


def pinned_url(base_url: str, version) -> str:
    """The tfhub.dev-style URL of exactly this version (``.../publisher/model/N``)."""
    return f"{base_url.rstrip('/')}/{version.publisher}/{version.model}/{version.version}"


def usage_snippets(version, *, base_url: str, token_required: bool, adapters: "AdapterSet") -> list[Snippet]:
    """The usage code for ``version``; always pinned, since the hub client caches URLs forever.

    The registry-API part comes from the format's adapter (``FormatAdapter.usage``;
    ``registry.load`` alone for a format no adapter on this server registers), framed
    by what is the same for every format: the client setup, tensorflow_hub and curl.
    """
    from registry.server.client_wheel import install_line

    url = pinned_url(base_url, version)
    setup = f"{install_line(base_url)}\nexport MODEL_REGISTRY_URL={base_url.rstrip('/')}\n"
    if token_required:
        setup += "export MODEL_REGISTRY_TOKEN=...  # this server needs a token for reads\n"
    snippets = [Snippet("use-setup", "Set up the registry client", setup,
                        note="Installs this server's own client (its dependencies come from your package index); "
                             "the registry's Python API below then reads this server's catalog through these "
                             "variables.")]
    adapter: FormatAdapter | None = adapters.get(version.format) if version.format in adapters else None
    snippets += adapter.usage(version) if adapter is not None else registry_usage(version.handle)
    snippets = _with_keras_variants(snippets, version.handle)
    hub_note = "The URL is pinned to version {n}: the tensorflow_hub client caches a URL forever, so an unpinned " \
               "URL would keep whatever it downloaded first.".format(n=version.version)
    if token_required:
        hub_note += " This server needs a token for reads, which the tensorflow_hub client cannot send."
    snippets.append(Snippet("use-hub", "tensorflow_hub",
                            f'import tensorflow_hub as hub\n\nmodel = hub.load("{url}")\n', note=hub_note))
    folder = f"{version.model}-{version.version}"
    auth = ' -H "Authorization: Bearer $MODEL_REGISTRY_TOKEN"' if token_required else ""
    snippets.append(Snippet("use-curl", "curl",
                            f'mkdir -p {folder}\ncurl -L{auth} "{url}?{COMPRESSED_QUERY}" | tar xz -C {folder}\n',
                            note=f"sha256 of the archive: {version.sha256}"))
    return snippets


def _with_keras_variants(snippets: list[Snippet], handle: str) -> list[Snippet]:
    """Where the format gives a Keras layer, the layer named for Keras 3 and the same in a tf_keras model."""
    result = []
    for snippet in snippets:
        if snippet.id != "use-keras":
            result.append(snippet)
            continue
        result.append(Snippet(snippet.id, "Keras 3 (registry.KerasLayer)", snippet.code, note=snippet.note))
        trainable = "" if "inference only" in snippet.code else ", trainable=False"
        result.append(Snippet(
            "use-tf-keras", "tf_keras (registry.tf_keras.KerasLayer)",
            f'import registry\nimport tf_keras\n\nmodel = tf_keras.Sequential(['
            f'registry.tf_keras.KerasLayer("{handle}"{trainable})])\n',
            note="For code written for Keras 2 (tf.keras before TensorFlow 2.16), through the tf_keras package."))
    return result


def card_facts(version) -> list[tuple[str, list[str]]]:
    """The card's structured fields as (label, values), for those it has."""
    facts = [("Tags", version.tags), ("Datasets", version.datasets), ("Language", version.language)]
    return [(label, list(values)) for label, values in facts if values]


def signature_groups(version) -> list[SignatureGroup]:
    """The version's signatures by graph variant, in the order of its tag sets (the default variant first)."""
    groups: dict[tuple[str, ...], SignatureGroup] = {}
    for tags in version.tag_sets or [[]]:
        groups.setdefault(tuple(tags), SignatureGroup(list(tags)))
    for signature in version.signatures:
        groups.setdefault(tuple(signature.tags), SignatureGroup(list(signature.tags))).signatures.append(signature)
    return [group for group in groups.values() if group.signatures]


def tensors(spec: dict[str, Any]) -> list[tuple[str, str, Any, str]]:
    """``(name, dtype, shape, kind)`` of each tensor of a signature's inputs or outputs, by name."""
    rows = []
    for name in sorted(spec):
        info = spec[name] if isinstance(spec[name], dict) else {}
        rows.append((name, str(info.get("dtype", "?")), info.get("shape"), str(info.get("kind") or "dense")))
    return rows


def evidence_facts(task) -> list[tuple[str, str]]:
    """The few evidence facts people choose by, in words; the full record is shown separately."""
    facts = [("Signature", task.signature + (f" (tags {{{', '.join(task.tags)}}})" if task.tags else ""))]
    if task.output_dim is not None:
        facts.append(("Output dimension", str(task.output_dim)))
    if task.image_size:
        height, width = task.image_size
        source = task.evidence.get("image_size_from")
        facts.append(("Image size", f"{height} × {width}" + (f" (from {source})" if source else "")))
    if task.evidence.get("flexible_image_size"):
        facts.append(("Flexible image size", "yes"))
    for key in ("variables", "trainable_variables", "regularization_losses"):
        if key in task.evidence:
            facts.append((key.replace("_", " ").capitalize(), str(task.evidence[key])))
    return facts


def formats_of(matrix: Iterable) -> list[str]:
    """Every format the server's adapters registered (the matrix has a row for each)."""
    return sorted({cell.format for cell in matrix})


def result_facts(version) -> list[tuple[str, str]]:
    """What a search result says beyond its name, where known: image size, output dimension, licence."""
    sizes = sorted({f"{t.image_size[0]} × {t.image_size[1]}" for t in version.tasks if t.image_size})
    dims = sorted({t.output_dim for t in version.tasks if t.output_dim is not None})
    facts = []
    if sizes:
        facts.append(("Image size", ", ".join(sizes)))
    if dims:
        facts.append(("Output dimension", ", ".join(map(str, dims))))
    if version.license:
        facts.append(("Licence", version.license))
    return facts


# -- the compare page ---------------------------------------------------------------------------------------------

@dataclass
class FactRow:
    """One fact of two versions side by side; ``same`` when they agree (shown once, not highlighted)."""

    label: str
    a: str
    b: str

    @property
    def same(self) -> bool:
        return self.a == self.b


@dataclass
class SignaturePair:
    """One signature (by graph variant and name) in A, B or both; ``same`` when identical (shown once)."""

    key: str
    a: Any = None
    b: Any = None

    @property
    def same(self) -> bool:
        return self.a is not None and self.b is not None and \
            (self.a.inputs, self.a.outputs) == (self.b.inputs, self.b.outputs)

    def differing(self, side: str) -> set[str]:
        """Names of ``side``'s tensors (``inputs:NAME``, ``outputs:NAME``) absent or different on the other side."""
        this, other = (self.a, self.b) if side == "a" else (self.b, self.a)
        if this is None:
            return set()
        found = set()
        for part in ("inputs", "outputs"):
            theirs = getattr(other, part) if other is not None else {}
            found |= {f"{part}:{name}" for name, spec in getattr(this, part).items() if theirs.get(name) != spec}
        return found


def _task_facts(version, what: str) -> str:
    values = set()
    for task in version.tasks:
        if what == "image_size" and task.image_size:
            values.add(f"{task.task}: {task.image_size[0]} × {task.image_size[1]}")
        if what == "output_dim" and task.output_dim is not None:
            values.add(f"{task.task}: {task.output_dim}")
    return "; ".join(sorted(values)) or "—"


def _short(text: str | None, limit: int = 280) -> str:
    text = (text or "").strip()
    return "—" if not text else text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _listed(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "—"
    return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def compare_facts(a, b) -> list[FactRow]:
    """The facts people choose by, for both versions: format, tasks and their sizes, size, card fields."""
    from registry.output import format_size

    rows = [FactRow("Description", _short(a.description), _short(b.description)),
            FactRow("Format", a.format, b.format),
            FactRow("Tasks", _listed(sorted({t.task for t in a.tasks})), _listed(sorted({t.task for t in b.tasks}))),
            FactRow("Image size", _task_facts(a, "image_size"), _task_facts(b, "image_size")),
            FactRow("Output dimension", _task_facts(a, "output_dim"), _task_facts(b, "output_dim")),
            FactRow("Size", format_size(a.size), format_size(b.size)),
            FactRow("Graph variants", _listed([" ".join(t) or "(default)" for t in a.tag_sets]),
                    _listed([" ".join(t) or "(default)" for t in b.tag_sets]))]
    for name, label in (("license", "Licence"), ("tags", "Tags"), ("datasets", "Data sets"),
                        ("language", "Languages"), ("base_model", "Base model")):
        if hasattr(a, name):
            rows.append(FactRow(label, _listed(getattr(a, name)), _listed(getattr(b, name))))
    rows.append(FactRow("Card", "yes" if getattr(a, "card", None) else "none",
                        "yes" if getattr(b, "card", None) else "none"))
    return rows


def signature_pairs(a, b) -> list[SignaturePair]:
    """Every signature of either version, paired by graph variant and name, in A's order then B's."""
    pairs: dict[str, SignaturePair] = {}
    for side, version in (("a", a), ("b", b)):
        for signature in version.signatures:
            key = f"{signature.name}" + (f" ({', '.join(signature.tags)})" if signature.tags else "")
            setattr(pairs.setdefault(key, SignaturePair(key)), side, signature)
    return list(pairs.values())
