"""The editor JSON: every number finite and in range, drawing bounded in work and interruptible."""
import json
import time

import pytest

from dragon_core.editor_json import (EDITOR_MAX_BRUSH_PIXELS, brush_pixels, parse_editor_json, rasterize)
from dragon_core.errors import DragonInputError
from dragon_core.grids import ImageSize

SIZE = ImageSize(96, 64)


def test_editor_json_round_trip_and_rasterisation():
    text = '{"version": 1, "points": [[10, 10, 50, 20]], "boxes": [[0, 0, 8, 8]], "strokes": [[40, 40, 6, 1], [40, 40, 3, 0]]}'
    state = parse_editor_json(text, SIZE)
    assert state.points.tolist() == [[10, 10, 50, 20]]
    mask = rasterize(state, SIZE)
    assert mask[:8, :8].all() and mask[40, 45] and not mask[40, 40]  # painted ring with an erased centre
    assert parse_editor_json("[[1, 2, 3, 4]]", SIZE).points.shape == (1, 4)
    assert rasterize(parse_editor_json("", SIZE), SIZE) is None


@pytest.mark.parametrize("text, field", [
    ('{"strokes": [[1e39, 20, 4, 1]]}', "editor_json.strokes[0]"),
    ('{"strokes": [[20, 1e300, 4, 1]]}', "editor_json.strokes[0]"),
    ('{"strokes": [[20, 20, 4, -1e39]]}', "editor_json.strokes[0]"),
    ('{"boxes": [[1e39, 0, 4, 4]]}', "editor_json.boxes[0]"),
    ('{"points": [[1, 2, 1e300, 4]]}', "editor_json.points[0]"),
])
def test_numbers_beyond_the_range_are_refused_by_name(text, field):
    with pytest.raises(DragonInputError) as info:
        parse_editor_json(text, SIZE)
    assert info.value.field == field and "is out of range" in str(info.value) and "1e+06" in str(info.value)


@pytest.mark.parametrize("text, words", [
    ('{"strokes": [[1e999, 20, 4, 1]]}', "must be finite"),
    ('{"strokes": [[20, 20, Infinity, 1]]}', "contains Infinity"),
    ('{"strokes": [[20, 20, 4, NaN]]}', "contains NaN"),
    ('{"strokes": [[-Infinity, 20, 4, 1]]}', "contains -Infinity"),
    ('{"strokes": [[1' + "0" * 400 + ', 20, 4, 1]]}', "too large for a float"),
])
def test_non_finite_numbers_are_refused(text, words):
    with pytest.raises(DragonInputError, match="editor_json") as info:
        parse_editor_json(text, SIZE)
    assert words in str(info.value)


def test_a_drawing_too_costly_to_draw_is_refused_at_once():
    """5,000 dabs of radius 4,096 on a 4,096 px image fit in the JSON limit; drawing them would cost 8e10 pixels."""
    size = ImageSize(4096, 4096)
    text = json.dumps({"strokes": [[9, 9, 4096, 1]] * 5000}, separators=(",", ":"))
    start = time.perf_counter()
    with pytest.raises(DragonInputError) as info:
        parse_editor_json(text, size)
    assert time.perf_counter() - start < 1.0
    assert info.value.field == "editor_json.strokes" and "5000 brush dabs cover" in str(info.value)
    # the bound counts each dab's square clipped to the image: the same dabs on a small image are cheap
    small = parse_editor_json(json.dumps({"strokes": [[9, 9, 64, 1]] * 5000}, separators=(",", ":")), ImageSize(64, 64))
    assert brush_pixels(small.strokes, ImageSize(64, 64)) == 5000 * 64 * 64 <= EDITOR_MAX_BRUSH_PIXELS


def test_drawing_calls_the_interrupt_check_and_stops_when_it_raises():
    size = ImageSize(2048, 2048)
    state = parse_editor_json(json.dumps({"strokes": [[1024, 1024, 1024, 1]] * 50}), size)
    calls = []

    class Interrupted(Exception):
        pass

    def interrupt():
        calls.append(1)
        if len(calls) == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        rasterize(state, size, interrupt)
    assert len(calls) == 3  # one check per dab of 2049^2 pixels: it stopped at the third
    done = rasterize(state, size, lambda: None)
    assert done[1024, 1024] and done[1024, 1] and not done[0, 0]


def test_a_dab_far_outside_the_image_draws_nothing_and_costs_nothing():
    state = parse_editor_json('{"strokes": [[-900000, 900000, 50, 1], [20, 20, 4, 1]]}', SIZE)
    assert brush_pixels(state.strokes, SIZE) == 9 * 9
    mask = rasterize(state, SIZE)
    assert mask.sum() == sum(1 for y in range(64) for x in range(96) if (x + 0.5 - 20) ** 2 + (y + 0.5 - 20) ** 2 <= 16)
