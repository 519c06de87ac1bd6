"""The handle grammar: every form parses to what it names, everything else is a HandleError."""

from pathlib import Path

import pytest

from registry.errors import HandleError
from registry.handles import CatalogHandle, PathHandle, UrlHandle, parse, parse_model_name, validate_name


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


def test_handles_are_values_and_a_url_never_equals_a_path():
    """Named tuples (cheap to import): equal and hashed by their fields, but only within one kind of handle."""
    assert parse("pub/net/3") == CatalogHandle("pub", "net", 3) and len({parse("pub/net/3"), parse("pub/net/3")}) == 1
    assert parse("pub/net@prod") != parse("pub/net")
    assert UrlHandle("model") != PathHandle("model") and not UrlHandle("model") == PathHandle("model")
    assert len({UrlHandle("model"), PathHandle("model")}) == 2
    with pytest.raises(AttributeError):
        parse("pub/net/3").version = 4


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


# --------------------------------------------------------------------------- what no handle contains

@pytest.mark.parametrize("text", [
    "p/m\x00", "\x00", "p/\x00m", "/tmp/a\x00b", "./a\x01", "file:///tmp/a\x00b", "memory://a\x00b",
    "http://h/\x7f", "p/m\x85x", "p/m\nq", "/models/a\tb", "gs://b/m\x1b[31m",
])
def test_control_characters_are_handle_errors(text):
    with pytest.raises(HandleError, match=r"control character U\+"):
        parse(text)


def test_surrounding_whitespace_is_still_ignored():
    assert parse(" p/m\n") == CatalogHandle("p", "m")
    assert parse("\t/abs/model \r\n") == PathHandle("/abs/model")


def test_absurdly_long_handles_are_refused_with_a_short_message():
    for text in ("p/" + "m" * 20_000, "/" + "a/" * 10_000, "http://h/" + "x" * 10_000, "\U0001f600" * 5000):
        with pytest.raises(HandleError) as info:
            parse(text)
        assert len(str(info.value)) < 500


def test_unknown_schemes_are_handle_errors_naming_the_known_ones():
    with pytest.raises(HandleError) as info:
        parse("nope://x/y")
    message = str(info.value)
    assert "'nope'" in message
    assert {"file", "gs", "http", "memory"} <= set(message.split("the known schemes are ", 1)[1].split(", "))


@pytest.mark.parametrize("text, expected", [
    ("HTTP://127.0.0.1:8000/m", "http://127.0.0.1:8000/m"),
    ("Gs://bucket/m", "gs://bucket/m"),
    ("MEMORY://m/1.tar.gz", "memory://m/1.tar.gz"),
])
def test_schemes_are_case_insensitive(text, expected):
    assert parse(text) == UrlHandle(expected)


@pytest.mark.parametrize("text", [
    "http://[::1/x", "http://h:99999/x", "http://h:abc/x", "http://:80/x", "ftp://@@/x", "https://u@/m",
])
def test_malformed_urls_are_handle_errors(text):
    with pytest.raises(HandleError):
        parse(text)


@pytest.mark.parametrize("text", [
    "p/m/\u00b2", "p/m/\u0661", "p/m/\uff11", "p/m/2147483648", "p/m/" + "9" * 4000, "p/m/ 1", "p/m/+1",
])
def test_versions_are_ascii_numbers_the_catalog_can_hold(text):
    with pytest.raises(HandleError):
        parse(text)


def test_the_largest_version_parses():
    assert parse("p/m/2147483647").version == 2**31 - 1


def test_names_fit_the_catalog():
    assert parse(f"p/{'m' * 128}").model == "m" * 128
    for text in (f"p/{'m' * 129}", f"{'p' * 129}/m", f"p/m@{'a' * 129}"):
        with pytest.raises(HandleError, match="at most 128"):
            parse(text)


def test_a_trailing_newline_is_no_part_of_a_name():
    with pytest.raises(HandleError):
        validate_name("model\n")


def test_path_objects_get_the_same_checks():
    with pytest.raises(HandleError, match="U\\+0000"):
        parse(Path("/tmp/a\x00b"))
    assert parse(Path("/abs/model")) == PathHandle("/abs/model")


@pytest.mark.parametrize("text", [
    "/" + "n" * 256, "/tmp/" + "\u00e9" * 200, "/" + "\u00e9/" * 2100, "file:///" + "n" * 300,
    "/\ud800", "file:///\ud800",
])
def test_paths_the_os_would_refuse_are_handle_errors(text):
    with pytest.raises(HandleError):
        parse(text)


def test_undecodable_file_names_are_paths():
    # os.listdir gives names with undecodable bytes as lone low surrogates (surrogateescape); they are real files
    assert parse("/tmp/\udcff") == PathHandle("/tmp/\udcff")
