"""dragon_core.point_lists: drag points from other nodes' point lists (KJNodes' Points Editor JSON, lists of pairs)."""
import json

import pytest
import torch

from dragon_core.errors import DragonInputError
from dragon_core.grids import ImageSize
from dragon_core.point_lists import pair_point_lists, parse_point_list

SIZE = ImageSize(64, 48)


def test_reads_the_points_editor_json_as_it_writes_it():
    # KJNodes' Points Editor outputs json.dumps of [{"x": int, "y": int}, ...]
    text = json.dumps([{"x": 10, "y": 20}, {"x": 33, "y": 7}])
    assert parse_point_list(text, "handle_points").tolist() == [[10.0, 20.0], [33.0, 7.0]]


def test_reads_the_single_quoted_form_and_plain_pairs():
    assert parse_point_list("[{'x': 1.5, 'y': 2}]", "p").tolist() == [[1.5, 2.0]]
    assert parse_point_list("[[4, 5], [6.25, 7]]", "p").tolist() == [[4.0, 5.0], [6.25, 7.0]]


def test_blank_or_empty_list_is_no_points():
    for text in ("", "  ", "[]"):
        assert parse_point_list(text, "p").shape == (0, 2)


def test_pairs_handles_with_targets_in_order():
    points = pair_point_lists('[{"x": 10, "y": 20}, {"x": 30, "y": 40}]', "[[12, 22], [35, 41]]", SIZE)
    assert points.tolist() == [[10, 20, 12, 22], [30, 40, 35, 41]]
    assert points.dtype == torch.float32


def test_no_list_connected_is_no_points():
    assert pair_point_lists(None, None, SIZE).shape == (0, 4)


@pytest.mark.parametrize("text, field, says", [
    ("not json", "handle_points", '[{"x": 10, "y": 20}, ...]'),
    ('{"x": 1, "y": 2}', "handle_points", "got a JSON dict"),
    ('[{"x": 1}]', "handle_points[0]", '{"x": number, "y": number}'),
    ("[[1, 2, 3]]", "handle_points[0]", "[x, y]"),
    ('[["a", 2]]', "handle_points[0]", "must be a number"),
    ("[[1, NaN]]", "handle_points", "NaN"),
    ("[[true, 2]]", "handle_points[0]", "must be a number"),
])
def test_a_bad_list_names_the_input_and_the_expected_form(text, field, says):
    with pytest.raises(DragonInputError) as err:
        pair_point_lists(text, "[[1, 1]]", SIZE)
    assert err.value.field == field
    assert says in str(err.value)


def test_lists_of_different_length_are_refused():
    with pytest.raises(DragonInputError) as err:
        pair_point_lists("[[1, 1], [2, 2]]", "[[3, 3]]", SIZE)
    assert err.value.field == "target_points" and "same length" in str(err.value)


def test_one_list_without_the_other_is_refused():
    with pytest.raises(DragonInputError) as err:
        pair_point_lists(None, "[[3, 3]]", SIZE)
    assert err.value.field == "handle_points" and "not connected" in str(err.value)
    with pytest.raises(DragonInputError) as err:
        pair_point_lists("[[3, 3]]", None, SIZE)
    assert err.value.field == "target_points"


def test_points_outside_the_image_are_refused_not_clamped():
    with pytest.raises(DragonInputError) as err:
        pair_point_lists("[[1, 1]]", "[[64, 10]]", SIZE)  # x must be < 64
    assert err.value.field == "target_points[0]" and "64x48" in str(err.value)


def test_limits_on_size():
    with pytest.raises(DragonInputError, match="at most 256"):
        parse_point_list(json.dumps([[1, 1]] * 257), "p")
    with pytest.raises(DragonInputError, match="characters"):
        parse_point_list(" " * 70000, "p")
    with pytest.raises(DragonInputError, match="as text"):
        parse_point_list([[1, 1]], "p")
