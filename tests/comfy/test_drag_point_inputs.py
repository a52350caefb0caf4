"""DragonEditDrag's point inputs (handle_points, target_points): points from other nodes, on the real ComfyUI."""
import importlib
import json

import pytest
import torch

IMAGE = torch.rand(1, 128, 96, 3, generator=torch.Generator().manual_seed(0))  # 96 wide, 128 high


@pytest.fixture
def drag(dragon_pack):
    return dragon_pack.NODE_CLASS_MAPPINGS["DragonEditDrag"]()


def test_points_editor_lists_drive_the_same_drag_as_the_editor(drag):
    from_editor = drag.build(IMAGE, json.dumps({"points": [[10, 20, 30, 25], [50, 60, 55, 90]]}))[0]
    from_inputs = drag.build(IMAGE, "{}", None, json.dumps([{"x": 10, "y": 20}, {"x": 50, "y": 60}]),
                             "[[30, 25], [55, 90]]")[0]
    assert torch.equal(from_inputs.handle_points, from_editor.handle_points)
    assert torch.equal(from_inputs.target_points, from_editor.target_points)


def test_input_points_are_added_after_the_editors(drag):
    edit = drag.build(IMAGE, json.dumps({"points": [[10, 20, 30, 25]]}), None, "[[1, 2]]", "[[3, 4]]")[0]
    assert edit.handle_points.tolist() == [[10, 20], [1, 2]] and edit.target_points.tolist() == [[30, 25], [3, 4]]


@pytest.mark.parametrize("handles, targets, field", [
    ("[[1, 2]", "[[3, 4]]", "handle_points"),                 # not JSON
    ("[[1, 2]]", None, "target_points"),                      # one list without the other
    ("[[1, 2]]", "[[3, 4]], [5, 6]]", "target_points"),       # not JSON
    ("[[1, 2], [5, 6]]", "[[3, 4]]", "target_points"),        # different lengths
    ("[[1, 2]]", "[[96, 4]]", "target_points[0]"),            # outside the 96-px-wide image
])
def test_a_bad_list_is_a_node_error_naming_the_input(drag, handles, targets, field):
    errors = importlib.import_module("dragon_pack.nodes.node_errors")
    with pytest.raises(errors.DragonNodeError) as info:
        drag.build(IMAGE, "{}", None, handles, targets)
    assert str(info.value).startswith(field + ":"), str(info.value)
