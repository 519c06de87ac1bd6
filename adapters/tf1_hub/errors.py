"""Errors specific to TF1 Hub modules, refining the registry's typed errors.

They subclass the built-ins tensorflow_hub raised in the same situations, so
code ported from ``hub.Module`` that catches ``ValueError`` or ``TypeError``
keeps working.
"""

from __future__ import annotations

from registry.errors import ConversionError as CoreConversionError
from registry.errors import FormatError, RegistryError, SignatureError


class GraphVariantError(SignatureError):
    """The module has no graph variant with the requested tags."""


class SignatureTypeError(SignatureError, TypeError):
    """Inputs do not match a signature, or the caller asked for an output the signature lacks."""


class ColocationError(RegistryError, ValueError):
    """A module's ``tf.colocate_with`` constraints cannot follow its state and inputs when it is applied."""


class FunctionApplyError(RegistryError, NotImplementedError):
    """A module cannot be applied inside a function replicated for TPU (it holds collections a function cannot)."""


class ConversionError(FormatError, CoreConversionError):
    """A TF1 Hub module holds something a TF2 SavedModel cannot reproduce faithfully; nothing was written."""
