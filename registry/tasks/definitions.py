"""The common signatures as data: each task's interface, what is checked, and what makes two models swappable.

TF Hub's promise is that models for one task share an interface, so a program
can try several by changing a handle. A definition states that interface for
both formats:

- TF1 Hub modules declare a task by *signature name* (``image_feature_vector``,
  ``image_classification``) or through their ``default`` signature; every
  signature of every graph variant is examined.
- TF2 SavedModels implement it with the restored object's ``__call__``, whose
  argument names are not part of the interface (callers pass one positional
  tensor), so only dtypes, shapes and the output's structure are compared.

A definition never trusts a claim: ``check`` looks at the signatures only. A
claim merely widens what may count where the signatures alone are ambiguous
(an image classifier and a feature extractor both map images to ``[batch, N]``
floats), and a claim the signatures contradict is refused with the mismatch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Mapping

from registry.adapter import SignatureInfo, TensorInfo

#: Dimension variables of a ``TensorPattern``; anything else in ``dims`` is a required size.
BATCH, HEIGHT, WIDTH, N = "batch", "height", "width", "N"
#: The pseudo-signature name under which the TF2 adapter describes a restored object's ``__call__``.
CALL = "__call__"
#: Name of the signature applied when a TF1 module is called without one.
DEFAULT = "default"


def shape_text(shape: tuple | None) -> str:
    if shape is None:
        return "unknown rank"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


@dataclass(frozen=True)
class TensorPattern:
    """A tensor a common signature requires: dtype, kind and a shape of variables and fixed sizes.

    ``batch``, ``height`` and ``width`` accept any size (``None`` included) and are
    recorded; ``N`` must be a fixed size, recorded as the output dimension; an
    integer must match exactly (the 3 colour channels).
    """

    dtype: str
    dims: tuple[str | int, ...]
    kind: str = "dense"

    def describe(self) -> str:
        return f"{self.dtype} [{', '.join(str(d) for d in self.dims)}]"

    def match(self, what: str, tensor: TensorInfo, task: str) -> tuple[dict[str, int | None], str | None]:
        """``(bound variables, None)`` if ``tensor`` fits, else ``({}, why not)``.

        ``what`` names the tensor in the reason ("input images").
        """
        if tensor.kind != self.kind:
            return {}, f"{what} is a {tensor.kind} tensor, {task} needs a {self.kind} one"
        if tensor.dtype != self.dtype:
            return {}, f"{what} has dtype {tensor.dtype}, {task} needs {self.dtype}"
        if tensor.shape is None or len(tensor.shape) != len(self.dims):
            return {}, (f"{what} has shape {shape_text(tensor.shape)}, {task} needs "
                        f"{len(self.dims)}-D {self.describe()}")
        bound: dict[str, int | None] = {}
        for axis, (want, got) in enumerate(zip(self.dims, tensor.shape, strict=True)):
            if isinstance(want, int):
                if got != want:
                    return {}, (f"{what} has size {'?' if got is None else got} in dimension {axis}, "
                                f"{task} needs {want} ({self.describe()})")
            elif want == N and got is None:
                return {}, f"{what} has an unknown size in dimension {axis}, {task} needs a fixed size N"
            else:
                bound[want] = got
        return bound, None


@dataclass(frozen=True)
class Implementation:
    """One graph variant's signature found to implement a task, with the evidence."""

    task: str
    signature: str
    tags: frozenset[str] = frozenset()
    output_dim: int | None = None
    image_size: tuple[int, int] | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict:
        """The task dict the catalog stores (``registry.catalog.records.TASK_KEYS``)."""
        height, width = self.image_size if self.image_size else (None, None)
        return {"task": self.task, "signature": self.signature, "tags": sorted(self.tags),
                "output_dim": self.output_dim, "image_height": height, "image_width": width,
                "evidence": dict(self.evidence)}


@dataclass(frozen=True)
class ModelFacts:
    """What a definition examines: a version's signatures by graph variant, its format and metadata."""

    format: str
    signatures: tuple[SignatureInfo, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    #: Expected image size from an attached ``image_module_info``, by graph variant.
    image_module_info: Mapping[frozenset[str], tuple[int, int]] = field(default_factory=dict)

    @property
    def call(self) -> SignatureInfo | None:
        return next((s for s in self.signatures if s.name == CALL), None)

    def variants(self) -> dict[frozenset[str], dict[str, SignatureInfo]]:
        """``{tags: {signature name: signature}}`` of the named (SignatureDef) signatures."""
        grouped: dict[frozenset[str], dict[str, SignatureInfo]] = {}
        for signature in self.signatures:
            if signature.name != CALL:
                grouped.setdefault(frozenset(signature.tags), {})[signature.name] = signature
        return grouped


@dataclass(frozen=True)
class Verdict:
    """The implementations found, and for each candidate that failed, why (for the message of a refused claim)."""

    implementations: tuple[Implementation, ...] = ()
    mismatches: tuple[str, ...] = ()


@dataclass(frozen=True)
class SwapCheck:
    """Whether a model implementing a task can stand in for another: blocking reasons, and caveats."""

    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


class SignatureDefinition(ABC):
    """A common signature (task). Third parties subclass this and register instances through
    the ``register_signature_definitions`` hook."""

    #: Task name stored in the catalog and used in searches and claims, e.g. ``"image_feature_vector"``.
    name: str
    #: One line for humans.
    summary: str

    @abstractmethod
    def checks(self) -> list[str]:
        """What ``check`` verifies, one sentence each (shown by the CLI and in docs)."""

    @abstractmethod
    def check(self, model: ModelFacts, *, claimed: bool) -> Verdict:
        """Find the signatures of ``model`` that implement this task, from the signatures alone."""

    def compare(self, a: Implementation, b: Implementation) -> SwapCheck:
        """Whether a model implementing ``b`` can replace one implementing ``a`` for this task."""
        return SwapCheck()


@dataclass(frozen=True)
class TensorSignatureDefinition(SignatureDefinition):
    """A task defined by input and output tensors: images or strings in, a ``[batch, N]`` float32 out.

    TF1 modules: a signature named in ``tf1_signatures`` must take exactly
    ``inputs`` and produce at least ``outputs`` (extra outputs, such as
    intermediate activations, are allowed). The ``default`` signature counts
    without a claim only if ``default_counts`` is ``"always"`` and the graph
    variant has no signature named in ``default_defers_to``.

    TF2 SavedModels: ``__call__`` takes one tensor matching the single input
    pattern (its name is free) and returns one output matching the single output
    pattern, keyed in the adapter's description by one of ``tf2_outputs``
    (``default`` for a plain tensor). Without a claim it counts only if that key
    is in ``tf2_detect_outputs``.
    """

    name: str
    summary: str
    inputs: Mapping[str, TensorPattern]
    outputs: Mapping[str, TensorPattern]
    tf1_signatures: tuple[str, ...]
    default_counts: str = "always"  # "always" or "when_claimed"
    default_defers_to: tuple[str, ...] = ()
    tf2_outputs: tuple[str, ...] = (DEFAULT,)
    tf2_detect_outputs: tuple[str, ...] = (DEFAULT,)
    #: Swapping: must the input image size match? must the output dimension match?
    same_image_size: bool = False
    same_output_dim: bool = False
    swap_notes: tuple[str, ...] = ()

    def checks(self) -> list[str]:
        ins = ", ".join(f"{k} {p.describe()}" for k, p in self.inputs.items())
        outs = ", ".join(f"{k} {p.describe()}" for k, p in self.outputs.items())
        named = " or ".join(repr(n) for n in self.tf1_signatures)
        lines = [
            f"TF1 Hub: a signature named {named} in any graph variant takes exactly {ins} and returns {outs} "
            f"(extra outputs allowed)",
        ]
        if DEFAULT in self.tf1_signatures:
            if self.default_counts == "when_claimed":
                lines.append(f"TF1 Hub: the 'default' signature counts only when {self.name} is claimed")
            elif self.default_defers_to:
                lines.append(f"TF1 Hub: the 'default' signature counts unless the variant has a "
                             f"{' or '.join(self.default_defers_to)} signature")
        (in_pattern,) = self.inputs.values()
        (out_pattern,) = self.outputs.values()
        detect = ", ".join(self.tf2_detect_outputs) or "none"
        lines.append(f"TF2 SavedModel: __call__ takes one {in_pattern.describe()} tensor and returns one "
                     f"{out_pattern.describe()} tensor (output keys {', '.join(self.tf2_outputs)}; counted without a "
                     f"claim for {detect})")
        if HEIGHT in in_pattern.dims:
            lines.append("image size: the attached image_module_info's default_image_size, else the input's "
                         "fixed height and width; none recorded when both are unknown")
        return lines

    # -- checking -----------------------------------------------------------------------------------------

    def check(self, model: ModelFacts, *, claimed: bool) -> Verdict:
        if model.call is not None:
            return self._check_call(model, model.call, claimed=claimed)
        found: list[Implementation] = []
        mismatches: list[str] = []
        for tags, by_name in model.variants().items():
            for name in self.tf1_signatures:
                signature = by_name.get(name)
                if signature is None:
                    continue
                if name == DEFAULT and not self._default_counts(by_name, claimed):
                    continue
                implementation, why = self._match(signature, model, tags)
                if implementation is not None:
                    found.append(implementation)
                    break  # one implementation per graph variant: the preferred signature name
                mismatches.append(f"signature {name!r} of graph variant {_tags_text(tags)}: {why}")
        if not found and not mismatches:
            names = " or ".join(repr(n) for n in self.tf1_signatures)
            have = sorted({s.name for s in model.signatures}) or ["none"]
            mismatches.append(f"no signature named {names} (signatures: {', '.join(have)})")
        return Verdict(tuple(found), tuple(mismatches))

    def _default_counts(self, by_name: Mapping[str, SignatureInfo], claimed: bool) -> bool:
        if claimed:
            return True
        if self.default_counts != "always":
            return False
        return not any(name in by_name for name in self.default_defers_to)

    def _match(self, signature: SignatureInfo, model: ModelFacts, tags) -> tuple[Implementation | None, str]:
        missing = sorted(set(self.inputs) - set(signature.inputs))
        extra = sorted(set(signature.inputs) - set(self.inputs))
        if missing or extra:
            parts = ([f"missing input {', '.join(missing)}"] if missing else []) + \
                    ([f"unexpected input {', '.join(extra)}"] if extra else [])
            return None, f"{'; '.join(parts)}, {self.name} needs exactly {', '.join(self.inputs)}"
        absent = sorted(set(self.outputs) - set(signature.outputs))
        if absent:
            return None, f"no output {', '.join(absent)}, {self.name} needs {', '.join(self.outputs)}"
        bound: dict[str, int | None] = {}
        for role, patterns, tensors in (("input", self.inputs, signature.inputs),
                                        ("output", self.outputs, signature.outputs)):
            for key, pattern in patterns.items():
                values, why = pattern.match(f"{role} {key}", tensors[key], self.name)
                if why:
                    return None, why
                bound.update(values)
        return self._implementation(signature.name, tags, bound, signature, model), ""

    def _check_call(self, model: ModelFacts, call: SignatureInfo, *, claimed: bool) -> Verdict:
        where = "__call__"
        (in_pattern,) = self.inputs.values()
        (out_pattern,) = self.outputs.values()
        if len(call.inputs) != 1:
            return Verdict(mismatches=(f"{where} takes {len(call.inputs)} inputs "
                                       f"({', '.join(call.inputs) or 'none'}), {self.name} needs one "
                                       f"{in_pattern.describe()} tensor",))
        if len(call.outputs) != 1:
            return Verdict(mismatches=(f"{where} returns {len(call.outputs)} outputs "
                                       f"({', '.join(call.outputs) or 'none known'}), {self.name} needs one "
                                       f"{out_pattern.describe()} tensor",))
        (in_name, in_tensor), = call.inputs.items()
        (out_name, out_tensor), = call.outputs.items()
        if out_name not in self.tf2_outputs:
            return Verdict(mismatches=(f"{where} returns a dict with key {out_name!r}, {self.name} needs "
                                       f"a plain tensor" + (f" or key {', '.join(self.tf2_outputs[1:])}"
                                                            if len(self.tf2_outputs) > 1 else ""),))
        bound, why = in_pattern.match(f"{where} input {in_name}", in_tensor, self.name)
        if why is None:
            more, why = out_pattern.match(f"{where} output {out_name}", out_tensor, self.name)
            bound.update(more)
        if why:
            return Verdict(mismatches=(why,))
        if not claimed and out_name not in self.tf2_detect_outputs:
            return Verdict(mismatches=(f"{where} matches {self.name} by shape, but a TF2 model counts as "
                                       f"{self.name} only when claimed",))
        return Verdict((self._implementation(CALL, frozenset(), bound, call, model),))

    def _implementation(self, signature: str, tags, bound, info: SignatureInfo, model: ModelFacts) -> Implementation:
        evidence: dict[str, Any] = {
            "signature": signature,
            "graph_variant": sorted(tags),
            "inputs": {k: {"dtype": t.dtype, "shape": _shape_json(t.shape)} for k, t in info.inputs.items()},
            "outputs": {k: {"dtype": t.dtype, "shape": _shape_json(t.shape)}
                        for k, t in info.outputs.items() if k in self.outputs or signature == CALL},
        }
        output_dim = bound.get(N)
        if output_dim is not None:
            evidence["output_dim"] = output_dim
        image_size = None
        if HEIGHT in bound:
            shape_size = (bound[HEIGHT], bound[WIDTH]) if None not in (bound[HEIGHT], bound[WIDTH]) else None
            attached = model.image_module_info.get(frozenset(tags))
            if attached is not None:
                evidence["image_module_info"] = list(attached)
            if shape_size is not None:
                image_size, evidence["image_size_from"] = shape_size, "input shape"
            elif attached is not None:
                image_size, evidence["image_size_from"] = attached, "image_module_info"
            else:
                evidence["image_size_from"] = None  # flexible input, no attached size
            evidence["flexible_image_size"] = shape_size is None
            if image_size is not None:
                evidence["image_size"] = list(image_size)
        return Implementation(task=self.name, signature=signature, tags=frozenset(tags), output_dim=output_dim,
                              image_size=image_size, evidence=evidence)

    # -- swapping -----------------------------------------------------------------------------------------

    def compare(self, a: Implementation, b: Implementation) -> SwapCheck:
        reasons, notes = [], list(self.swap_notes)
        if self.same_image_size:
            if a.image_size and b.image_size and a.image_size != b.image_size:
                reasons.append(f"input image size differs: {_size(a.image_size)} vs {_size(b.image_size)}; "
                               f"resize the images to the new model's size, or pick one of the same size")
            elif (a.image_size is None) != (b.image_size is None):
                notes.append("one model's input size is flexible; feed it images of the other's size")
        if a.output_dim != b.output_dim:
            if self.same_output_dim:
                reasons.append(f"output dimension differs: {a.output_dim} vs {b.output_dim}")
            else:
                notes.append(f"output dimension differs ({a.output_dim} vs {b.output_dim}): whatever consumes it "
                             f"(a new head, a stored index) must be rebuilt for the new size")
        return SwapCheck(tuple(reasons), tuple(notes))


@dataclass(frozen=True)
class ReusableSavedModelDefinition(SignatureDefinition):
    """TF2's reusable SavedModel API: ``__call__``, ``variables``, ``trainable_variables``, ``regularization_losses``.

    Read from the TF2 adapter's description: the ``__call__`` pseudo-signature
    and ``metadata["reusable_api"]`` (which attributes the restored object has).
    As in TF Hub's API (and ``hub.KerasLayer``, which reads it with ``hasattr``),
    ``regularization_losses`` is optional: a model without it has no such losses.
    TF1 Hub modules do not implement it: loaded in TF2 they are not callable.
    """

    name: str = "reusable_saved_model"
    summary: str = "TF2 reusable SavedModel: callable, with variables, trainable_variables (regularization_losses)"
    attributes: tuple[str, ...] = ("variables", "trainable_variables")
    optional_attributes: tuple[str, ...] = ("regularization_losses",)

    def checks(self) -> list[str]:
        return [
            "the restored object has a traced __call__",
            f"the restored object has the attributes {', '.join(self.attributes)} (lists, possibly empty); "
            f"{', '.join(self.optional_attributes)} is optional and its length recorded",
            "TF1 Hub modules never implement it: loaded in TF2 they are not callable",
        ]

    def check(self, model: ModelFacts, *, claimed: bool) -> Verdict:
        call = model.call
        api = model.metadata.get("reusable_api") or {}
        if call is None or not api.get("__call__"):
            return Verdict(mismatches=(f"the model has no __call__ (format {model.format}); {self.name} needs a "
                                       f"TF2 SavedModel of a callable object",))
        missing = [a for a in self.attributes if not api.get(f"has_{a}", a in api)]
        if missing:
            return Verdict(mismatches=(f"the restored object has no {', '.join(missing)} attribute, "
                                       f"{self.name} needs {', '.join(self.attributes)}",))
        evidence = {
            "signature": CALL,
            "call_inputs": {k: {"dtype": t.dtype, "shape": _shape_json(t.shape)} for k, t in call.inputs.items()},
            "call_outputs": {k: {"dtype": t.dtype, "shape": _shape_json(t.shape)} for k, t in call.outputs.items()},
            "call_accepts_training": bool(model.metadata.get("call_accepts_training", False)),
            **{a: api.get(a) for a in self.attributes + self.optional_attributes
               if api.get(f"has_{a}", True) and isinstance(api.get(a), int)},
        }
        return Verdict((Implementation(task=self.name, signature=CALL, evidence=evidence),))

    def compare(self, a: Implementation, b: Implementation) -> SwapCheck:
        ins_a = list(a.evidence.get("call_inputs", {}).values())
        ins_b = list(b.evidence.get("call_inputs", {}).values())
        if [(t["dtype"], _rank(t["shape"])) for t in ins_a] != [(t["dtype"], _rank(t["shape"])) for t in ins_b]:
            return SwapCheck(reasons=(f"__call__ inputs differ: {_describe(ins_a)} vs {_describe(ins_b)}",))
        return SwapCheck(notes=("only the calling convention is checked; what the outputs mean is not",))


def _shape_json(shape):
    return None if shape is None else list(shape)


def _rank(shape) -> int | None:
    return None if shape is None else len(shape)


def _describe(tensors: list[dict]) -> str:
    return ", ".join(f"{t['dtype']} {shape_text(None if t['shape'] is None else tuple(t['shape']))}"
                     for t in tensors) or "none"


def _size(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def _tags_text(tags) -> str:
    return "{" + ", ".join(sorted(tags)) + "}"


IMAGES = TensorPattern("float32", (BATCH, HEIGHT, WIDTH, 3))
FEATURES = TensorPattern("float32", (BATCH, N))

IMAGE_FEATURE_VECTOR = TensorSignatureDefinition(
    name="image_feature_vector",
    summary="images float32 [batch, height, width, 3] in [0, 1] -> feature vectors float32 [batch, N]",
    inputs={"images": IMAGES},
    outputs={DEFAULT: FEATURES},
    tf1_signatures=("image_feature_vector", DEFAULT),
    default_defers_to=("image_classification",),
    # A TF2 call returning a plain [batch, N] float tensor from images is taken to be a feature vector;
    # a classifier looks the same, so TF2 classifiers are told apart by a claim or a logits/probabilities key.
    tf2_outputs=(DEFAULT,),
    tf2_detect_outputs=(DEFAULT,),
    same_image_size=True,
    same_output_dim=False,
    swap_notes=("a new classification head adapts to any feature size; the inputs must be the same images",),
)

IMAGE_CLASSIFICATION = TensorSignatureDefinition(
    name="image_classification",
    summary="images float32 [batch, height, width, 3] in [0, 1] -> logits float32 [batch, N classes]",
    inputs={"images": IMAGES},
    outputs={DEFAULT: FEATURES},
    tf1_signatures=("image_classification", DEFAULT),
    default_counts="when_claimed",
    tf2_outputs=(DEFAULT, "logits", "probabilities"),
    tf2_detect_outputs=("logits", "probabilities"),
    same_image_size=True,
    same_output_dim=True,
    swap_notes=("the class labels are not recorded: check both models use the same label set",),
)

TEXT_EMBEDDING = TensorSignatureDefinition(
    name="text_embedding",
    summary="sentences string [batch] -> embeddings float32 [batch, N]",
    inputs={DEFAULT: TensorPattern("string", (BATCH,))},
    outputs={DEFAULT: FEATURES},
    tf1_signatures=(DEFAULT,),
    same_output_dim=False,
    swap_notes=("both take raw strings; each model does its own tokenization",),
)

REUSABLE_SAVED_MODEL = ReusableSavedModelDefinition()

#: The definitions this plugin registers, in the order the CLI lists them.
BUILTIN_DEFINITIONS: tuple[SignatureDefinition, ...] = (
    IMAGE_FEATURE_VECTOR, IMAGE_CLASSIFICATION, TEXT_EMBEDDING, REUSABLE_SAVED_MODEL)
