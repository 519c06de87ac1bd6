"""Fine-tune an image feature vector from the catalog under a new classification head, publish, load back.

    python examples/fine_tune_image_classifier.py                      # a throwaway catalog
    python examples/fine_tune_image_classifier.py --handle vision/fv/3  # your catalog's model

Without ``--handle`` the example makes a throwaway catalog in a temporary folder,
publishes the bundled reference model ``registry/demo_models/tf2_image_feature_vector``
there first, so it runs anywhere, and removes the folder when it ends. The data set is generated: each image's class is
its brightest colour channel, which a small feature vector can learn.

It publishes twice, both with the feature vector's version as parent:
the fine-tuned feature vector as the next version of its own model (reusable by
``registry.KerasLayer`` like the original), and the whole classifier as a new model.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

REFERENCE_MODEL = Path(__file__).resolve().parent.parent / "registry" / "demo_models" / "tf2_image_feature_vector"


def use_throwaway_catalog() -> Path:
    """Point the registry at a temporary catalog, storage and cache (before it reads its settings)."""
    root = Path(tempfile.mkdtemp(prefix="registry-example-"))
    (root / "artifacts").mkdir()
    os.environ["MODEL_REGISTRY_DATABASE_URL"] = f"sqlite:///{root / 'catalog.db'}"
    os.environ["MODEL_REGISTRY_STORAGE_URL"] = str(root / "artifacts")
    os.environ["MODEL_REGISTRY_CACHE_DIR"] = str(root / "cache")
    return root


def generated_images(n: int, size: tuple[int, int], classes: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size=n)
    images = rng.uniform(0.0, 0.5, size=(n, *size, 3)).astype(np.float32)
    images[np.arange(n), :, :, labels % 3] += 0.5
    return images, labels


def image_size(layer) -> tuple[int, int]:
    """Height and width the feature vector takes, read from its __call__'s input signature."""
    (spec,), _ = layer.loaded_object.__call__.concrete_functions[0].structured_input_signature[:2]
    height, width = spec.shape[1], spec.shape[2]
    return (height or 224, width or 224)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handle", help="catalog handle of a TF2 image feature vector (default: a throwaway catalog)")
    parser.add_argument("--classifier-name", default="examples/colour-classifier",
                        help="model name to publish the classifier under")
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args(argv)

    if args.handle is None:
        root = use_throwaway_catalog()
        print(f"throwaway catalog in {root}")
        try:
            return run(args)
        finally:
            shutil.rmtree(root, ignore_errors=True)  # the catalog, its artifacts and cache: nothing is left behind
            print(f"removed the throwaway catalog {root}")
    return run(args)


def run(args: argparse.Namespace) -> int:
    """Fine-tune, publish and load back, on whichever catalog the environment names by now."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import keras
    import numpy as np
    import tensorflow as tf

    import registry

    handle = args.handle
    if handle is None:
        handle = registry.publish(REFERENCE_MODEL, name="examples/image-feature-vector",
                                  description="the bundled reference image feature vector").handle
        print(f"published the reference feature vector as {handle}")
    parent = registry.get_version(handle)  # pins an alias or "newest" to the version actually used

    layer = registry.KerasLayer(parent.handle, trainable=True)
    size = image_size(layer)
    images, labels = generated_images(256, size, args.classes, seed=0)
    test_images, test_labels = generated_images(64, size, args.classes, seed=1)

    model = keras.Sequential([keras.Input((*size, 3)), layer, keras.layers.Dense(args.classes)])
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    history = model.fit(images, labels, epochs=args.epochs, batch_size=32, verbose=0).history
    _, accuracy = model.evaluate(test_images, test_labels, verbose=0)
    print(f"fine-tuned {parent.handle}: loss {history['loss'][0]:.3f} -> {history['loss'][-1]:.3f}, "
          f"held-out accuracy {accuracy:.2f}")

    features = registry.publish(layer, name=f"{parent.publisher}/{parent.model}", parent=parent.handle,
                                description=f"{parent.handle} fine-tuned on generated colour images")
    classifier = registry.publish(model, name=args.classifier_name, parent=parent.handle,
                                  description=f"colour classifier on {parent.handle}")
    print(f"published the fine-tuned feature vector as {features.handle} (parent {features.parent})")
    print(f"published the classifier as {classifier.handle} (parent {classifier.parent})")

    reloaded = registry.load(classifier.handle, mode="tf2")
    logits = reloaded(tf.constant(test_images)).numpy()
    same = np.allclose(logits, model.predict(test_images, verbose=0), atol=1e-5)
    reloaded_accuracy = float(np.mean(logits.argmax(axis=1) == test_labels))
    print(f"loaded {classifier.handle} back: same outputs as the trained model: {same}, "
          f"accuracy {reloaded_accuracy:.2f}")
    reused = registry.KerasLayer(features.handle)
    print(f"{features.handle} as a frozen layer: features of shape {tuple(reused(test_images[:2]).shape)}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
