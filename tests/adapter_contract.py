"""The contract every format adapter passes. An implementation supplies fixtures only.

Subclass ``AdapterContract`` in a ``test_*.py`` module and define the fixtures:

- ``adapter_cls``: the ``FormatAdapter`` subclass under test;
- ``model_dir``: a model directory in that format;
- ``foreign_dir``: a model directory in another format, which the adapter must not claim;
- ``signature_names``: names of signatures ``inspect`` must find in ``model_dir``;
- ``check_loaded``: a function ``(loaded_object, mode, model_dir)`` that asserts the loaded model computes
  what it should (run it; compare with expected outputs).
"""

from __future__ import annotations

import pytest
import tensorflow as tf

import registry
from registry.adapter import ArtifactInfo, FormatAdapter
from registry.matrix import MODES, OPERATIONS
from registry.plugin_manager import get_plugin_manager


class AdapterContract:
    def test_is_a_format_adapter_with_a_name(self, adapter_cls):
        assert issubclass(adapter_cls, FormatAdapter)
        assert adapter_cls.format and adapter_cls.description

    def test_declares_a_full_matrix_row_for_its_own_format(self, adapter_cls):
        keys = {(c.operation, c.mode) for c in adapter_cls.matrix}
        assert keys == {(op, mode) for op in OPERATIONS for mode in MODES}
        assert all(c.format == adapter_cls.format for c in adapter_cls.matrix)

    def test_detects_its_format_only(self, adapter_cls, model_dir, foreign_dir, tmp_path):
        assert adapter_cls.detect(model_dir)
        assert not adapter_cls.detect(foreign_dir)
        assert not adapter_cls.detect(tmp_path)

    def test_its_plugin_claims_its_directories(self, adapter_cls, model_dir, tmp_path):
        hook = get_plugin_manager().hook
        assert hook.claim_directory(path=model_dir) == adapter_cls.format
        assert hook.claim_directory(path=tmp_path) is None

    def test_inspect_reads_signatures_and_tag_sets(self, adapter_cls, model_dir, signature_names):
        info = adapter_cls().inspect(model_dir)
        assert isinstance(info, ArtifactInfo) and info.format == adapter_cls.format
        assert info.tag_sets
        assert set(signature_names) <= {s.name for s in info.signatures}
        for sig in info.signatures:
            assert sig.tags in info.tag_sets
            for tensor in [*sig.inputs.values(), *sig.outputs.values()]:
                tf.dtypes.as_dtype(tensor.dtype)  # a real dtype name

    @pytest.mark.parametrize("mode", MODES)
    def test_loads_by_catalog_handle_in_every_supported_mode(self, adapter_cls, model_dir, check_loaded,
                                                              registry_env, mode):
        record = registry.publish(model_dir, name="contract/model")
        assert record.format == adapter_cls.format
        if not adapter_cls().matrix or not registry.compatibility_matrix().cell(adapter_cls.format, "load", mode).supported:
            pytest.fail("every built-in format loads in both modes")
        if mode == "tf1":
            with tf.Graph().as_default():
                check_loaded(registry.load(record.handle, mode="tf1"), "tf1", model_dir)
        else:
            check_loaded(registry.load(record.handle, mode="tf2"), "tf2", model_dir)

    def test_unsupported_cells_are_refused_by_the_gate(self, adapter_cls, model_dir, registry_env):
        registry.publish(model_dir, name="contract/model")
        for cell in adapter_cls.matrix:
            if cell.supported or cell.operation == "create":
                continue
            ctx = tf.Graph().as_default() if cell.mode == "tf1" else _nothing()
            with ctx, pytest.raises(registry.UnsupportedOperation) as info:
                getattr(registry, cell.operation)("contract/model/1", mode=cell.mode)
            assert info.value.alternative == cell.alternative

    def test_publish_records_what_inspect_reads(self, adapter_cls, model_dir, registry_env):
        info = adapter_cls().inspect(model_dir)
        record = registry.publish(model_dir, name="contract/model", description="contract")
        assert {s.name for s in record.signatures} == {s.name for s in info.signatures}
        assert sorted(map(sorted, info.tag_sets)) == sorted(record.tag_sets)
        assert registry.get_version(record.handle).sha256 == record.sha256


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
