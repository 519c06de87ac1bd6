"""Unmodified tensorflow_hub clients read the server's model URLs and reproduce the reference outputs.

- tensorflow_hub 0.16.1 with TensorFlow 2.21 and tf-keras, in its own virtual
  environment: ``hub.load`` and ``hub.KerasLayer`` (in a tf_keras model) of a
  TF2 SavedModel, and ``hub.load(...).signatures[...]`` of a TF1 Hub module;
- the reference stack (TensorFlow 2.15 + tensorflow_hub 0.15): ``hub.Module(url)``
  applied in a graph.

Each client downloads through the pinned version URL
(``/publisher/model/N``), as the pages tell hub users to, into its own cache.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import REFERENCE_DIR
from tests.refstack import run_hub_client_script, run_script

pytestmark = [pytest.mark.refstack, pytest.mark.slow]

HUB_016_SCRIPT = '''
import json, sys
import numpy as np
import tensorflow as tf
import tensorflow_hub as hub
import tf_keras

base, ref = sys.argv[1], sys.argv[2]
def expected(name):
    data = np.load(f"{ref}/{name}.expected.npz")
    return {k: data[k] for k in data.files}

result = {"hub": hub.__version__, "tf": tf.__version__}
e = expected("tf2_text_embedding")
model = hub.load(f"{base}/text/embed/1")
result["load"] = bool(np.allclose(model(tf.constant(e["in:__call__:sentences"])).numpy(),
                                  e["out:__call__:default"], atol=1e-5))
keras_model = tf_keras.Sequential([hub.KerasLayer(f"{base}/text/embed/1", input_shape=[], dtype=tf.string)])
result["keras_layer"] = bool(np.allclose(keras_model.predict(tf.constant(e["in:__call__:sentences"]), verbose=0),
                                         e["out:__call__:default"], atol=1e-5))
e = expected("tf1_image_feature_vector")
module = hub.load(f"{base}/vision/features/1")
out = module.signatures["image_feature_vector"](images=tf.constant(e["in:image_feature_vector:images"]))
result["tf1_signature"] = bool(np.allclose(out["default"].numpy(), e["out:image_feature_vector:default"], atol=1e-5))
print("RESULT " + json.dumps(result))
'''

HUB_015_SCRIPT = '''
import json, sys
import numpy as np
import tensorflow as tf
import tensorflow_hub as hub

base, ref = sys.argv[1], sys.argv[2]
data = np.load(f"{ref}/tf1_image_feature_vector.expected.npz")
with tf.Graph().as_default():
    module = hub.Module(f"{base}/vision/features/1")
    images = tf.compat.v1.placeholder(tf.float32, [None, 32, 32, 3])
    features = module(images, signature="image_feature_vector")
    with tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        got = session.run(features, {images: data["in:image_feature_vector:images"]})
print("RESULT " + json.dumps({"hub": hub.__version__,
                              "module": bool(np.allclose(got, data["out:image_feature_vector:default"], atol=1e-5))}))
'''


def _result(done) -> dict:
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout[-2000:] + done.stderr[-4000:]
    return json.loads(lines[-1][len("RESULT "):])


@pytest.fixture
def served(registry_server):
    server = registry_server
    for name, archive in [("text/embed", "tf2_text_embedding"), ("vision/features", "tf1_image_feature_vector")]:
        status, body = server.publish(name, (REFERENCE_DIR / f"{archive}.tar.gz").read_bytes())
        assert status == 201, body
    return server


def test_tensorflow_hub_016_loads_from_the_server(served, tmp_path):
    done = run_hub_client_script(HUB_016_SCRIPT, served.url, REFERENCE_DIR,
                                 env={"TFHUB_CACHE_DIR": str(tmp_path / "hub-cache")})
    result = _result(done)
    assert (result["hub"], result["tf"]) == ("0.16.1", "2.21.0")
    assert result["load"] and result["keras_layer"] and result["tf1_signature"], result
    assert '"GET /text/embed/1?tf-hub-format=compressed' in served.log()


def test_the_reference_stack_applies_a_tf1_module_from_the_server_in_a_graph(served, tmp_path, monkeypatch):
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "hub-cache-015"))  # run_script passes the environment on
    result = _result(run_script(HUB_015_SCRIPT, served.url, REFERENCE_DIR))
    assert result == {"hub": "0.15.0", "module": True}
