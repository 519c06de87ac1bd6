"""Train the same small classifier over every image feature vector in the catalog, and compare.

The feature extractor is a hyperparameter: a handle string. Every version the
catalog knows implements ``image_feature_vector`` (checked when it was
published) takes float32 images ``[batch, height, width, 3]`` in [0, 1] and
returns ``[batch, N]`` features, so one program trains a head over any of them;
the catalog also says which image size each expects, so the images are resized
per handle. Run it with one handle, several, or none for all of them:

    python examples/swap_feature_extractors.py
    python examples/swap_feature_extractors.py --handle examples/reference-ifv-tf2
    python examples/swap_feature_extractors.py --catalog-dir /tmp/swap-demo   # a throwaway catalog

So that there is something to compare, the example first publishes (when
absent) the reference feature vectors bundled in ``registry/demo_models`` — one
TF1 Hub module and one TF2 SavedModel — and a TF2 feature vector it builds: the
mean and spread of each colour over the image and its four quadrants.

TF1 Hub modules are loaded in mode tf2 and applied through the signature the
catalog names (``image_feature_vector``); TF2 models through ``__call__``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "registry" / "demo_models"
TASK = "image_feature_vector"
#: Published by this example when absent: name -> where the model comes from.
EXAMPLE_MODELS = {
    "examples/reference-ifv-tf1": REFERENCE_DIR / "tf1_image_feature_vector",
    "examples/reference-ifv-tf2": REFERENCE_DIR / "tf2_image_feature_vector",
    "examples/colour-stats-ifv": None,  # built by colour_stats_extractor()
}
#: Size of the generated images before each extractor's resize.
BASE_SIZE = 48
CLASSES = ("reddish", "greenish", "bluish", "bright top", "bright bottom")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--handle", action="append", default=[],
                        help="an image feature vector handle (repeatable); default: every one in the catalog")
    parser.add_argument("--catalog-dir", type=Path,
                        help="keep the catalog, artifacts and cache in this folder instead of the configured ones")
    parser.add_argument("--examples", type=int, default=1500, help="generated images (80%% train, 20%% test)")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-publish", action="store_true", help="do not add the example models to the catalog")
    return parser.parse_args(argv)


def open_registry(catalog_dir: Path | None):
    import registry

    if catalog_dir is None:
        return registry.default_registry()
    catalog_dir.mkdir(parents=True, exist_ok=True)
    return registry.Registry(database_url=f"sqlite:///{catalog_dir / 'catalog.db'}",
                             storage_url=str(catalog_dir / "artifacts"), cache_dir=catalog_dir / "cache")


def colour_stats_extractor(size: int = 24):
    """A TF2 image feature vector with no weights to learn: colour mean and spread over 5 regions (30 features)."""
    import tensorflow as tf

    class ColourStats(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)])
        def __call__(self, images):
            half = size // 2
            regions = [images, images[:, :half], images[:, half:], images[:, :, :half], images[:, :, half:]]
            stats = []
            for region in regions:
                mean, variance = tf.nn.moments(region, axes=[1, 2])
                stats += [mean, tf.sqrt(variance + 1e-6)]
            return tf.concat(stats, axis=-1)

    return ColourStats()


def publish_example_models(reg) -> None:
    from registry.errors import ModelNotFound, VersionNotFound

    for name, source in EXAMPLE_MODELS.items():
        try:
            reg.get_version(name)
            continue
        except (ModelNotFound, VersionNotFound):
            pass
        model = source if source is not None else colour_stats_extractor()
        record = reg.publish(model, name=name, description="published by examples/swap_feature_extractors.py",
                             tasks=[TASK])
        print(f"published {record.handle} ({record.format})", file=sys.stderr)


def make_images(n: int, seed: int):
    """Images of 5 classes: a dominant colour (3 classes) or a bright half (2 classes), with noise and clutter."""
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(CLASSES), size=n)
    images = rng.uniform(0.0, 0.6, size=(n, BASE_SIZE, BASE_SIZE, 3)).astype("float32")
    half = BASE_SIZE // 2
    for i, label in enumerate(labels):
        if label < 3:
            images[i, :, :, label] += rng.uniform(0.03, 0.15)
        elif label == 3:
            images[i, :half] += rng.uniform(0.03, 0.15)
        else:
            images[i, half:] += rng.uniform(0.03, 0.15)
        # A random bright square, so no class is decided by a single pixel.
        y, x = rng.integers(0, BASE_SIZE - 12, size=2)
        images[i, y:y + 12, x:x + 12] += rng.uniform(0.0, 0.3, size=3)
    return np.clip(images, 0.0, 1.0), labels


class FeatureExtractor:
    """One catalog handle as a function from images to features, as the catalog's task record says to call it."""

    def __init__(self, reg, handle: str):
        self.version = reg.get_version(handle)
        implementations = [t for t in self.version.tasks if t.task == TASK]
        if not implementations:
            raise SystemExit(f"{self.version.handle} does not implement {TASK}; its tasks: "
                             f"{', '.join(sorted({t.task for t in self.version.tasks})) or 'none'}")
        self.task = implementations[0]
        self.image_size = tuple(self.task.image_size) if self.task.image_size else (BASE_SIZE, BASE_SIZE)
        self.model = reg.load(self.version.handle, mode="tf2")
        (self.input_name,) = self.task.evidence.get("inputs", {"images": None})

    def __call__(self, images):
        import tensorflow as tf

        images = tf.image.resize(images, self.image_size)
        if self.task.signature == "__call__":
            return self.model(images)
        return self.model.signatures[self.task.signature](**{self.input_name: images})["default"]

    def features(self, images, batch_size: int = 256):
        import numpy as np

        return np.concatenate([np.asarray(self(images[i:i + batch_size]))
                               for i in range(0, len(images), batch_size)])


def train_head(train_x, train_y, test_x, test_y, *, epochs: int, seed: int) -> tuple[float, float]:
    """The same classifier for every extractor: standardized features, one hidden layer, softmax."""
    import keras

    keras.utils.set_random_seed(seed)
    mean, std = train_x.mean(axis=0), train_x.std(axis=0) + 1e-6
    head = keras.Sequential([
        keras.Input(shape=(train_x.shape[1],)),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(len(CLASSES), activation="softmax"),
    ])
    head.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    head.fit((train_x - mean) / std, train_y, epochs=epochs, batch_size=64, verbose=0)
    _, train_accuracy = head.evaluate((train_x - mean) / std, train_y, verbose=0)
    _, test_accuracy = head.evaluate((test_x - mean) / std, test_y, verbose=0)
    return float(train_accuracy), float(test_accuracy)


def main(argv=None) -> int:
    args = parse_args(argv)
    reg = open_registry(args.catalog_dir)
    if not args.no_publish:
        publish_example_models(reg)
    handles = args.handle or [v.handle for v in reg.search(task=TASK, limit=None)]
    if not handles:
        print(f"the catalog has no {TASK} model; run without --no-publish to add the examples", file=sys.stderr)
        return 1

    images, labels = make_images(args.examples, args.seed)
    split = int(0.8 * len(images))
    rows = []
    for handle in handles:
        started = time.perf_counter()
        extractor = FeatureExtractor(reg, handle)
        train_x, test_x = extractor.features(images[:split]), extractor.features(images[split:])
        train_acc, test_acc = train_head(train_x, labels[:split], test_x, labels[split:],
                                         epochs=args.epochs, seed=args.seed)
        rows.append((extractor.version.handle, extractor.version.format, "x".join(map(str, extractor.image_size)),
                     str(train_x.shape[1]), f"{train_acc:.3f}", f"{test_acc:.3f}",
                     f"{time.perf_counter() - started:.1f}"))

    header = ("HANDLE", "FORMAT", "IMAGE SIZE", "FEATURES", "TRAIN ACC", "TEST ACC", "SECONDS")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(f"{len(CLASSES)} classes, {split} training and {len(images) - split} test images; chance is "
          f"{1 / len(CLASSES):.2f}")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
