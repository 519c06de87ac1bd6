"""The TF2 SavedModel format adapter, as a plugin (its ``detect`` claims its directories)."""

from __future__ import annotations

from registry.hookspecs import hookimpl

from registry.adapters.tf2_saved_model.adapter import TF2SavedModelAdapter


@hookimpl
def register_adapters(register):
    register(TF2SavedModelAdapter)
