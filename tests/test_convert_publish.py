"""``registry.convert`` and ``model-registry convert``: a TF1 Hub version published as the TF2 version derived from it.

Real catalogs, storage and servers: the converted model is published as any
version is (locally, or uploaded to ``model-registry serve`` in client mode),
its parent is the source version, and it records what it was converted from.
Every refusal comes before anything is published.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

import registry
from registry.errors import ConversionError, ModeError, UnsupportedConversion, UnsupportedOperation
from tests.conftest import REFERENCE_DIR
from tests.server_support import cli, create_token
from tests.test_cli import run
from tests.test_web_pages import HTML, get

from registry.adapters.tf1_hub.provenance import RECORD

tf1 = tf.compat.v1
TF2 = "tf2_saved_model"


def _scatter_fn():
    """A module the converter refuses: scatter_update of a ref variable."""
    v = tf1.get_variable("v", initializer=tf.constant([1.0, 2.0]), use_resource=False)
    x = tf1.placeholder(tf.float32, [None])
    registry.add_signature(inputs=x, outputs=x * tf1.scatter_update(v, [0], [5.0])[0])


def _versions(name: str) -> list[str]:
    try:
        return [v.handle for v in registry.list_versions(name)]
    except registry.ModelNotFound:
        return []


def test_convert_publishes_the_next_version_of_the_model_derived_from_the_source(reference, registry_env):
    source = registry.publish(REFERENCE_DIR / "tf1_train_tags", name="hub/train-tags")
    converted = registry.convert("hub/train-tags@latest", to=TF2, description="fine-tunable")
    version = converted.version
    assert (version.handle, version.format, version.parent) == ("hub/train-tags/2", TF2, source.handle)
    assert version.description == "fine-tunable"
    assert [v.handle for v in registry.lineage(version.handle)] == [version.handle, source.handle]
    record = version.details["converted_from"]
    assert record == {"source": source.handle, "format": "tf1_hub", "summary": converted.report.summary()}
    assert record["summary"][0].startswith("converted hub/train-tags/1 (TF1 Hub module) to a TF2 SavedModel")
    assert registry.get_version(version.handle).details["converted_from"] == record  # as the catalog keeps it

    inputs, expected = reference.expected("tf1_train_tags")
    x = tf.constant(inputs["default"]["default"])
    np.testing.assert_allclose(registry.load(version.handle)(x).numpy(), expected["default"]["default"], atol=1e-5)
    # What the matrix refuses for the source is supported for the converted version.
    with pytest.raises(UnsupportedOperation, match=r"Instead: convert it .*registry\.convert\(handle, "
                                                   r"to=\"tf2_saved_model\"\)"):
        registry.fine_tune(source.handle, mode="tf2")
    layer = registry.KerasLayer(version.handle, trainable=True)
    assert len(layer.trainable_weights) == 6 and layer(x, training=True).shape == (x.shape[0], 4)

    # Another model, named: version 1 of it, still derived from the source.
    other = registry.convert(source.handle, to=TF2, name="hub/train-tags-tf2").version
    assert (other.handle, other.parent) == ("hub/train-tags-tf2/1", source.handle)


def test_refusals_come_before_anything_is_published(registry_env):
    source = registry.publish(REFERENCE_DIR / "tf1_train_tags", name="hub/m")
    tf2 = registry.publish(REFERENCE_DIR / "tf2_image_feature_vector", name="hub/tf2")
    with pytest.raises(UnsupportedConversion, match=r"cannot convert hub/m/1 to 'onnx': a tf1_hub model converts "
                                                    r"only to tf2_saved_model"):
        registry.convert(source.handle, to="onnx")
    with pytest.raises(UnsupportedConversion, match="a tf2_saved_model model converts to no other format"):
        registry.convert(tf2.handle, to=TF2)
    with pytest.raises(ConversionError):  # the core's error class: what the CLI and the API report
        registry.convert(tf2.handle, to=TF2)
    with pytest.raises(TypeError, match="takes only call_signature="):
        registry.convert(source.handle, to=TF2, variant={"train"})  # (tags= is a version field: the card's tags)
    with pytest.raises(ConversionError, match=r"no signature 'nope' for __call__"):
        registry.convert(source.handle, to=TF2, call_signature="nope")
    with tf.Graph().as_default(), pytest.raises(ModeError, match="needs eager execution"):
        registry.convert(source.handle, to=TF2)  # mode tf1: the matrix allows both ends, the converter does not
    refused = registry.publish(registry.create_module_spec(_scatter_fn), name="hub/scatter")
    with pytest.raises(ConversionError, match=r"updates the ref variable 'v'"):
        registry.convert(refused.handle, to=TF2)
    assert _versions("hub/m") == ["hub/m/1"] and _versions("hub/tf2") == ["hub/tf2/1"]
    assert _versions("hub/scatter") == ["hub/scatter/1"]
    assert list((registry_env.cache_dir / "tmp").glob("*/converted")) == []  # the work directory went too


def test_a_conversion_record_that_is_not_the_converters_refuses_the_publish(registry_env, tmp_path):
    target = tmp_path / "converted"
    from registry.adapters.tf1_hub.convert import convert_module

    convert_module(REFERENCE_DIR / "tf1_train_tags", target)
    (target / RECORD).write_text(json.dumps({"source": "x", "format": "y", "summary": "not a list"}))
    with pytest.raises(ConversionError, match=r"model_registry_conversion.json .* is invalid"):
        registry.publish(target, name="hub/forged")
    assert _versions("hub/forged") == []


def test_the_cli_prints_the_report_and_the_new_handle_and_refuses_in_one_line(registry_env):
    run("publish", str(REFERENCE_DIR / "tf1_text_embedding"), "--name", "text/embed")
    result = run("convert", "text/embed", "--to", TF2)
    lines = result.output.splitlines()
    assert lines[0].startswith("converted text/embed/1 (TF1 Hub module) to a TF2 SavedModel")
    assert "tables: hash_table (assets: _vocab.txt)" in lines
    assert lines[-1] == f"published text/embed/2 (format {TF2}, parent text/embed/1)"
    data = json.loads(run("--json", "convert", "text/embed/1", "--to", TF2, "--name", "text/embed-tf2").output)
    assert data["handle"] == "text/embed-tf2/1" and data["conversion"][0].startswith("converted text/embed/1")
    failed = run("convert", "text/embed/2", "--to", TF2, code=1)
    assert failed.output.startswith("Error: cannot convert text/embed/2") and "Traceback" not in failed.output
    assert _versions("text/embed") == ["text/embed/1", "text/embed/2"]


def test_in_client_mode_the_converted_model_is_uploaded_and_its_page_says_what_it_came_from(registry_server,
                                                                                         tmp_path):
    server = registry_server
    status, body = server.publish("web/tags", (REFERENCE_DIR / "tf1_train_tags.tar.gz").read_bytes())
    assert status == 201, body
    token = create_token(server.env, "converter", "publish")
    env = {k: v for k, v in server.env.items() if not k.startswith("MODEL_REGISTRY_")}
    env.update({"MODEL_REGISTRY_URL": server.url, "MODEL_REGISTRY_TOKEN": token,
                "MODEL_REGISTRY_CACHE_DIR": str(tmp_path / "client-cache")})
    result = cli("convert", "web/tags/1", "--to", TF2, env=env)
    assert result.stdout.splitlines()[-1] == f"published web/tags/2 (format {TF2}, parent web/tags/1)"
    status, version = server.json("GET", "/api/v1/models/web/tags/versions/2")
    assert status == 200 and version["parent"] == "web/tags/1"
    assert version["details"]["converted_from"]["source"] == "web/tags/1"

    status, _, page = get(server, "/web/tags/2", HTML)
    assert status == 200
    assert ('<dt>Converted from</dt><dd id="converted-from"><a href="/web/tags/1">web/tags/1</a> '
            '(<code>tf1_hub</code>)') in page
    assert "training=True runs the {&#39;train&#39;} variant with its 2 update ops" in page
    status, _, page = get(server, "/web/tags/1", HTML)
    assert status == 200 and 'id="use-convert"' in page
    assert f"model-registry convert web/tags/1 --to {TF2}" in page and "Converted from" not in page

