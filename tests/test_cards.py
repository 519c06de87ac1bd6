"""Model cards: the card and the fields its front matter fills, the file list, card edits, the migration.

Cards in both conventions (Hugging Face front matter, tfhub.dev metadata lines) are read
into fields that search filters on; a model directory's README.md is the card at publish;
a card edit changes the catalog (audited) and never the artifact. On SQLite and PostgreSQL
where a catalog is involved.
"""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import text

from registry.api import Registry
from registry.cards.parse import parse_card
from registry.catalog import schema
from registry.catalog.cards import CardStore
from registry.catalog.engine import make_engine
from registry.catalog.models import MAX_CARD_BYTES, VersionCreate, VersionMetadata
from registry.catalog.store import Catalog
from registry.errors import MetadataError
from tests.conftest import REFERENCE_DIR

MODEL = REFERENCE_DIR / "tf2_text_embedding"

HF_CARD = """---
license: apache-2.0
language:
- en
- fr
tags: [text-embedding, nnlm]
datasets: wikipedia
base_model: google/nnlm-en-dim128
pipeline_tag: feature-extraction
---
# Tiny text embedding

Maps sentences to 8 numbers.

## Citation

**BibTeX:**

```bibtex
@misc{tiny, title={Tiny}}
```

## Limitations

Small.
"""

# The shape of tensorflow/tfhub.dev's assets/docs model documents.
TFHUB_CARD = """# Module examples/tiny-fv/1
Feature vectors of 32x32 images.

<!-- asset-path: internal -->
<!-- dataset: imagenet-ilsvrc-2012-cls -->
<!-- fine-tunable: true -->
<!-- format: saved_model_2 -->
<!-- network-architecture: mobilenet-v2 -->
<!-- task: image-feature-vector -->
<!-- language: en -->
<!-- license: mit -->

## Overview

An example.

```markdown
<!-- license: gpl-3.0-only -->
```
"""


def test_front_matter_in_hugging_faces_convention_becomes_the_fields():
    record = VersionMetadata.checked({"card": HF_CARD})
    assert record.license == "Apache-2.0"
    assert record.tags == ["text-embedding", "nnlm", "feature-extraction"]
    assert record.datasets == ["wikipedia"] and record.language == ["en", "fr"]
    assert record.base_model == "google/nnlm-en-dim128"
    assert record.citation == "@misc{tiny, title={Tiny}}"
    assert record.card == HF_CARD  # the card is kept whole; rendering drops the front matter
    assert parse_card(HF_CARD).body.startswith("# Tiny text embedding")


def test_tfhub_dev_metadata_lines_are_read_as_a_card():
    parsed = parse_card(TFHUB_CARD)
    assert parsed.convention == "tfhub.dev" and "<!--" not in parsed.body.split("```")[0]
    record = VersionMetadata.checked({"card": TFHUB_CARD})
    assert record.tags == ["image-feature-vector", "mobilenet-v2"]
    assert record.datasets == ["imagenet-ilsvrc-2012-cls"] and record.language == ["en"]
    assert record.license == "MIT"  # the example inside a code fence says nothing


def test_fields_given_with_the_card_win_and_hugging_faces_other_licence_sets_none():
    record = VersionMetadata.checked({"card": HF_CARD, "license": "MIT", "tags": ["mine"]})
    assert record.license == "MIT" and record.tags == ["mine"] and record.datasets == ["wikipedia"]
    assert VersionMetadata.checked({"card": "---\nlicense: other\n---\nx"}).license is None


@pytest.mark.parametrize("card, message", [
    ("---\ntags: [a\n---\nx", "not valid YAML"),
    ("---\n- a\n- b\n---\nx", "must be a YAML mapping"),
    ("---\ntags: {a: 1}\n---\nx", "'tags' must be a string or a list"),
    ("---\nlicense: Apache 2\n---\nx", "did you mean Apache-2.0"),
    ('---\ntags: [\'say "hi"\']\n---\nx', "not a valid entry of tags"),
    ("x" * (MAX_CARD_BYTES + 1), "at most 1024 KiB"),
    ("a\x00b", "NUL"),
])
def test_a_bad_card_is_a_typed_error_saying_what_is_wrong(card, message):
    with pytest.raises(MetadataError, match=message):
        VersionMetadata.checked({"card": card})


@pytest.fixture
def model_dir(tmp_path):
    target = tmp_path / "model"
    shutil.copytree(MODEL, target)
    (target / "README.md").write_text(HF_CARD, encoding="utf-8")
    return target


def test_publish_reads_readme_md_records_the_file_list_and_a_card_edit_keeps_the_artifact(tmp_path, model_dir):
    registry = Registry(database_url=f"sqlite:///{tmp_path / 'catalog.db'}", storage_url=str(tmp_path / "s"),
                        cache_dir=tmp_path / "cache")
    version = registry.publish(model_dir, name="text/tiny")
    assert version.card == HF_CARD and version.license == "Apache-2.0" and version.tags[0] == "text-embedding"
    paths = [entry["path"] for entry in version.files]
    assert "README.md" in paths and "saved_model.pb" in paths and paths == sorted(paths)
    assert version.file_count == len(version.files)
    sizes = {entry["path"]: entry["size"] for entry in version.files}
    assert sizes["saved_model.pb"] == (model_dir / "saved_model.pb").stat().st_size

    # --card (card=) wins over README.md
    other = registry.publish(model_dir, name="text/tiny", card="# Given\n\nby hand")
    assert other.card == "# Given\n\nby hand" and other.license is None and other.tags == []

    edited = registry.set_card("text/tiny/1", "---\ntags: [edited]\n---\n# New card")
    assert edited.card.endswith("# New card") and edited.tags == ["edited"]
    assert edited.license is None and edited.datasets == [] and edited.citation is None  # named by the old card only
    assert (edited.sha256, edited.size, edited.artifact_uri) == (version.sha256, version.size, version.artifact_uri)
    assert registry.get_version("text/tiny/1").tags == ["edited"]
    # Listings leave the card's text out (a model's versions, search results), not its fields.
    listed = registry.list_versions("text/tiny")[0]
    assert listed.card is None and listed.tags == ["edited"] and listed.files == edited.files
    assert [(v.card, v.tags) for v in registry.search(tags="edited")] == [(None, ["edited"])]
    entries = registry.audit(action="card.set")
    assert [e.subject for e in entries] == ["text/tiny/1"]
    assert entries[0].after["fields"]["tags"] == ["edited"] and "card" not in entries[0].after
    registry.set_card("text/tiny/1", "---\ntags: [edited]\n---\n# New card")  # the same card: nothing recorded
    assert len(registry.audit(action="card.set")) == 1
    # A licence given on its own outlives a card that names none.
    registry.publish(model_dir, name="text/licensed", license="MIT", card="# no front matter")
    assert registry.set_card("text/licensed/1", "# still none").license == "MIT"
    assert registry.set_card("text/licensed/1", None).card is None


def test_a_readme_that_is_not_utf8_is_refused_before_anything_is_written(tmp_path, model_dir):
    (model_dir / "README.md").write_bytes(b"\xff\xfe caf\xe9")
    registry = Registry(database_url=f"sqlite:///{tmp_path / 'catalog.db'}", storage_url=str(tmp_path / "s"),
                        cache_dir=tmp_path / "cache")
    with pytest.raises(MetadataError, match="README.md .* not UTF-8"):
        registry.publish(model_dir, name="text/bad")
    assert registry.list_models() == []


@pytest.fixture
def catalog(database_url):
    with Catalog(database_url) as catalog:
        yield catalog


def _create(catalog, name, **fields):
    return catalog.create_version(VersionCreate.checked({
        "publisher": "acme", "name": name, "format": "tf2_saved_model", "artifact_uri": f"file:///{name}",
        "sha256": "ab" * 32, "size": 1, **fields}))


def test_search_filters_on_card_fields_as_whole_entries(catalog):
    _create(catalog, "a", card=HF_CARD)
    _create(catalog, "b", card=TFHUB_CARD)
    _create(catalog, "c", tags=["text-embedding-large"], language=["en"])
    handles = lambda **filters: [v.handle for v in catalog.search(filters=filters)]  # noqa: E731
    assert handles(tags="text-embedding") == ["acme/a/1"]  # an entry, not a substring of one
    assert handles(tags="Image-Feature-Vector") == ["acme/b/1"]
    assert handles(language="en") == ["acme/a/1", "acme/b/1", "acme/c/1"]
    assert handles(language="fr", datasets="wikipedia") == ["acme/a/1"]
    assert handles(base_model="google/nnlm-en-dim128") == ["acme/a/1"]
    assert handles(tags="50%_off") == []


def test_publisher_cards_are_set_replaced_and_removed(catalog):
    cards = CardStore(catalog)
    assert cards.publisher_card("acme").card is None
    assert cards.set_publisher_card("acme", "# ACME\n\nModels.").card == "# ACME\n\nModels."
    assert cards.set_publisher_card("acme", "# ACME 2").card == "# ACME 2"
    assert cards.publisher_card("acme").updated_at is not None
    assert cards.set_publisher_card("acme", "  ").card is None
    assert [e.subject for e in catalog.audit.entries(action="card.set")] == ["publisher:acme"] * 3


def test_the_migration_keeps_existing_versions_with_no_card_and_an_unknown_file_list(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    schema.upgrade(url, "0007")
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO registered_model (id, publisher, name, description, created_at, "
                                "last_version) VALUES (1, 'acme', 'old', '', '2026-01-01', 1)"))
        connection.execute(text("INSERT INTO model_version (id, model_id, version, created_at, description, format, "
                                "artifact_uri, sha256, size, tag_sets, details) VALUES (1, 1, 1, '2026-01-01', '', "
                                "'tf2_saved_model', 'file:///old', :sha, 1, '[[]]', '{}')"), {"sha": "ab" * 32})
    engine.dispose()
    schema.upgrade(url)
    with Catalog(url) as catalog:
        old = catalog.get_version("acme/old/1")
        assert (old.card, old.tags, old.files, old.file_count) == (None, [], [], None)
        assert CardStore(catalog).set_version_card("acme/old/1", HF_CARD).language == ["en", "fr"]


def test_the_cli_publishes_with_a_card_shows_it_rendered_and_edits_it(registry_env, model_dir, tmp_path):
    from click.testing import CliRunner

    from registry.cli import cli

    def run(*args: str, code: int = 0, stdin: str | None = None) -> str:
        result = CliRunner().invoke(cli, list(args), input=stdin)
        assert result.exit_code == code, result.output
        return result.output

    card = tmp_path / "CARD.md"
    card.write_text("---\nlicense: mit\ntags: [given]\n---\n# Given card\n\n<b onclick=x>bold?</b>\n\n"
                    "| a | b |\n|---|---|\n| 1 | 2 |\n", encoding="utf-8")
    out = run("publish", str(model_dir), "--name", "text/tiny", "--card", str(card))
    assert "license: MIT" in out and "tags given" in out
    shown = run("show", "text/tiny/1")
    assert "tags:        given" in shown and "saved_model.pb" in shown and "files:       6" in shown
    assert "Given card" in shown and "<b onclick=x>bold?</b>" in shown  # the card, its raw HTML as text
    assert "---" not in shown.split("card:", 1)[1].split("signatures:")[0]  # no front matter
    assert run("card", "show", "text/tiny/1", "--raw") == card.read_text()
    out = run("card", "set", "text/tiny/1", "-", stdin="---\ntags: [piped]\n---\n# Piped\n")
    assert "artifact unchanged" in out and "tags:       piped" in out
    assert "Piped" in run("card", "show", "text/tiny/1") and "license:     -" in run("show", "text/tiny/1")
    assert run("card", "set", "text/tiny/1", "--remove").startswith("removed the card of text/tiny/1")
    assert "has no card" in run("card", "show", "text/tiny/1")
    run("card", "set", "text", "-", stdin="# The text team\n")
    assert "The text team" in run("card", "show", "text")
    error = run("card", "set", "text/tiny/1", str(tmp_path / "missing.md"), code=1)
    assert "cannot read the card" in error and "No such file" in error and "Traceback" not in error
    (tmp_path / "latin1.md").write_bytes(b"caf\xe9")
    assert "not UTF-8" in run("card", "set", "text/tiny/1", str(tmp_path / "latin1.md"), code=1)
    # README.md of the directory is the card when --card is not given.
    assert "tags text-embedding" in run("publish", str(model_dir), "--name", "text/readme")
