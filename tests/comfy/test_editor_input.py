"""The edit nodes' regions (in-process, real ComfyUI): each MASK input is read on its own against the 0.5
threshold, errors name the input actually used, and drawing the editor's strokes stops on ComfyUI's interrupt."""
import importlib
import json

import pytest
import torch

IMAGE = torch.rand(1, 64, 96, 3, generator=torch.Generator().manual_seed(0))
STROKES = {"strokes": [[40, 30, 6, 1]]}


@pytest.fixture
def nodes(dragon_pack):
    return dragon_pack.NODE_CLASS_MAPPINGS


def refused(call) -> str:
    errors = importlib.import_module("dragon_pack.nodes.node_errors")
    with torch.inference_mode(), pytest.raises(errors.DragonNodeError) as info:
        call()
    message = str(info.value)
    assert len(message) < 400 and "\n" not in message, message
    return message


def soft(value: float) -> torch.Tensor:
    return torch.full((1, 64, 96), value)


def test_a_soft_mask_next_to_painted_strokes_is_an_error_naming_it_and_the_threshold(nodes):
    move = lambda: nodes["DragonEditMove"]().build(IMAGE, 8, 0, 1.0, json.dumps(STROKES), soft(0.5))
    message = refused(move)
    assert message.startswith("object_mask: is empty: no value above 0.5 (its largest is 0.5"), message
    drag = lambda: nodes["DragonEditDrag"]().build(IMAGE, json.dumps({"points": [[40, 30, 50, 30]], **STROKES}),
                                                   soft(0.3))
    assert refused(drag).startswith("region_mask: is empty: no value above 0.5 (its largest is 0.3"), refused(drag)
    above = soft(0.0)
    above[:, 10:20, 10:30] = 0.51
    with torch.inference_mode():  # just above the threshold counts
        (edit,) = nodes["DragonEditMove"]().build(IMAGE, 8, 0, 1.0, "{}", above)
    assert torch.equal(edit.object_mask, above[0] > 0.5)


def test_an_erased_drawing_is_named_as_editor_json_not_as_a_mask_that_is_not_connected(nodes):
    erased = {"points": [[40, 30, 50, 30]], "strokes": [[40, 30, 6, 1], [40, 30, 12, 0]]}
    message = refused(lambda: nodes["DragonEditDrag"]().build(IMAGE, json.dumps(erased)))
    assert message.startswith("editor_json: the boxes and strokes leave nothing painted"), message
    assert "region_mask" not in message


def test_a_whole_image_object_names_the_inputs_it_came_from(nodes):
    whole = json.dumps({"boxes": [[0, 0, 96, 64]]})
    build = nodes["DragonEditMove"]().build
    assert refused(lambda: build(IMAGE, 8, 0, 1.0, whole)).startswith("editor_json: covers the whole image")
    assert refused(lambda: build(IMAGE, 8, 0, 1.0, whole, soft(1.0))).startswith(
        "editor_json + object_mask: covers the whole image")
    assert refused(lambda: build(IMAGE, 8, 0, 1.0, "{}", soft(1.0))).startswith("object_mask: covers the whole image")


def test_drawing_the_strokes_stops_on_comfyuis_interrupt(nodes):
    import comfy.model_management

    image = torch.zeros(1, 2048, 2048, 3)
    editor = json.dumps({"points": [[10, 10, 20, 20]], "strokes": [[1024, 1024, 1024, 1]] * 400})
    comfy.model_management.interrupt_current_processing(True)
    try:
        with torch.inference_mode(), pytest.raises(comfy.model_management.InterruptProcessingException):
            nodes["DragonEditDrag"]().build(image, editor)
    finally:
        comfy.model_management.interrupt_current_processing(False)
