"""The handle grammar: every form parses to what it names, everything else is a HandleError."""

import pytest

from registry.errors import HandleError
from registry.handles import CatalogHandle, PathHandle, UrlHandle, parse, parse_model_name


@pytest.mark.parametrize("text, expected", [
    ("vision/mobilenet-tiny", CatalogHandle("vision", "mobilenet-tiny")),
    ("vision/mobilenet-tiny/3", CatalogHandle("vision", "mobilenet-tiny", version=3)),
    ("vision/mobilenet-tiny@prod", CatalogHandle("vision", "mobilenet-tiny", alias="prod")),
    ("vision/mobilenet-tiny@latest", CatalogHandle("vision", "mobilenet-tiny")),
    ("a.b/c_d-e.1/12", CatalogHandle("a.b", "c_d-e.1", version=12)),
])
def test_catalog_handles(text, expected):
    assert parse(text) == expected


def test_catalog_handle_round_trips_to_string():
    for text in ("p/m", "p/m/7", "p/m@stable"):
        assert str(parse(text)) == text
    assert parse("p/m/7").pinned and not parse("p/m@x").pinned and not parse("p/m").pinned


@pytest.mark.parametrize("text", [
    "gs://bucket/models/m", "https://example.org/m/1", "http://127.0.0.1:8000/m.tar.gz",
    "file:///tmp/m", "memory://m/1.tar.gz",
])
def test_url_handles(text):
    assert parse(text) == UrlHandle(text)


def test_http_directory_urls_ask_for_the_compressed_form():
    assert parse("https://h/m/1").download_url() == "https://h/m/1?tf-hub-format=compressed"
    assert parse("https://h/m/1?x=y").download_url() == "https://h/m/1?x=y&tf-hub-format=compressed"
    assert parse("https://h/m.tar.gz").download_url() == "https://h/m.tar.gz"
    assert parse("gs://b/m").download_url() == "gs://b/m"


@pytest.mark.parametrize("text", ["/abs/model", "./rel", "../up/m.tar.gz", "~/models/m"])
def test_path_handles(text):
    assert parse(text) == PathHandle(text)


@pytest.mark.parametrize("text", [
    "", "   ", "model", "Vision/m", "p/M", "p//m", "p/m/0", "p/m/-1", "p/m/01", "p/m/x", "p/m/1/2",
    "p/m/1@a", "p/../m", "./", "p/m@", "p/m@A", "../", "p/ m", "http://", "gs:///",
])
def test_bad_handles_raise_handle_error_with_the_grammar(text):
    if text in ("./", "../"):
        assert isinstance(parse(text), PathHandle)  # paths, even if they name no model
        return
    with pytest.raises(HandleError) as info:
        parse(text)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "publisher/model" in message and "scheme://" in message and "'./'" in message


@pytest.mark.parametrize("name", ["..", ".", "p/..", "../m"])
def test_dot_only_segments_are_refused(name):
    with pytest.raises(HandleError):
        parse_model_name(name)


def test_non_strings_are_refused():
    with pytest.raises(HandleError):
        parse(3)


def test_model_names():
    assert parse_model_name("vision/tiny-fv") == ("vision", "tiny-fv")
    for bad in ("vision/tiny/1", "vision/tiny@x", "vision", "/abs/path"):
        with pytest.raises(HandleError):
            parse_model_name(bad)
