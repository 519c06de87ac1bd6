"""The compatibility matrix: data from the adapters, one gate, shown to users."""

import pytest

from registry.errors import UnsupportedOperation
from registry.matrix import Cell, CompatibilityMatrix
from registry.plugin_manager import AdapterSet, make_plugin_manager

EXPECTED = {
    ("tf1_hub", "load", "tf1"): True, ("tf1_hub", "load", "tf2"): True,
    ("tf1_hub", "fine_tune", "tf1"): True, ("tf1_hub", "fine_tune", "tf2"): False,
    ("tf1_hub", "create", "tf1"): True, ("tf1_hub", "create", "tf2"): False,
    ("tf2_saved_model", "load", "tf1"): True, ("tf2_saved_model", "load", "tf2"): True,
    ("tf2_saved_model", "fine_tune", "tf1"): True, ("tf2_saved_model", "fine_tune", "tf2"): True,
    ("tf2_saved_model", "create", "tf1"): True, ("tf2_saved_model", "create", "tf2"): True,
}


@pytest.fixture(scope="module")
def matrix():
    return AdapterSet(make_plugin_manager(load_entry_points=False)).matrix


def test_the_built_in_matrix_is_the_documented_one(matrix):
    assert {cell.key: cell.supported for cell in matrix} == EXPECTED


def test_every_cell_carries_a_note_and_unsupported_ones_an_alternative(matrix):
    for cell in matrix:
        assert cell.note or cell.alternative, cell
        if not cell.supported:
            assert cell.alternative


@pytest.mark.parametrize("operation", ["fine_tune", "create"])
def test_unsupported_cells_raise_naming_the_cell_and_the_alternative(matrix, operation):
    with pytest.raises(UnsupportedOperation) as info:
        matrix.check("tf1_hub", operation, "tf2")
    error = info.value
    assert isinstance(error, NotImplementedError)
    assert (error.format, error.operation, error.mode) == ("tf1_hub", operation, "tf2")
    assert "tf1_hub" in str(error) and "mode tf2" in str(error) and error.alternative in str(error)
    assert "tf1" in error.alternative


def test_supported_cells_return_the_cell(matrix):
    cell = matrix.check("tf2_saved_model", "fine_tune", "tf2")
    assert cell.supported and cell.key == ("tf2_saved_model", "fine_tune", "tf2")


def test_unknown_format_and_bad_mode(matrix):
    with pytest.raises(UnsupportedOperation):
        matrix.check("onnx", "load", "tf2")
    with pytest.raises(ValueError):
        matrix.check("tf2_saved_model", "load", "tf3")


def test_render_shows_every_format_and_the_notes(matrix):
    text = matrix.render()
    assert "tf1_hub" in text and "tf2_saved_model" in text
    assert text.count("not supported") == 2
    assert "Instead:" in text and "2.15" in text  # Estimator note
    one_row = matrix.render("tf1_hub").splitlines()
    assert not any(line.startswith("tf2_saved_model") for line in one_row)  # (its "Instead:" names convert's target)
    assert any(line.startswith("tf1_hub") for line in one_row)
    assert 'registry.convert(handle, to="tf2_saved_model")' in "\n".join(one_row)


def test_fine_tuning_a_tf1_hub_module_in_tf2_stays_unsupported_and_names_convert(matrix):
    cell = matrix.cell("tf1_hub", "fine_tune", "tf2")
    assert not cell.supported
    assert "model-registry convert HANDLE --to tf2_saved_model" in cell.alternative


def test_as_rows_is_plain_data(matrix):
    rows = matrix.as_rows()
    assert len(rows) == 6
    row = next(r for r in rows if r["format"] == "tf1_hub" and r["operation"] == "create")
    assert row["tf2"]["supported"] is False and row["tf1"]["supported"] is True


def test_cells_validate_themselves():
    with pytest.raises(ValueError):
        Cell("x", "load", "tf2", False)  # unsupported without an alternative
    with pytest.raises(ValueError):
        Cell("x", "train", "tf2", True)
    with pytest.raises(ValueError):
        CompatibilityMatrix([Cell("x", "load", "tf2", True), Cell("x", "load", "tf2", True)])
