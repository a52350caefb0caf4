"""DragonGuider misused through the real server (demo model): samplers whose steps the guider cannot make the
guided DDIM step, and RandomNoise on the start latent, are node errors naming the input and the supported
choice; none of them leaves anything behind, so the same graph with ddim afterwards gives the valid result,
pixel for pixel, with DragonBankSigmas' output still coming from ComfyUI's cache."""
from __future__ import annotations

import pytest

from dragon_test_helpers.prompts import (assert_success, cached_nodes, demo_guider_prompt, execution_error,
                                         image_arrays, run_prompt)

STEPS = 3
MISUSE = [  # (KSamplerSelect's sampler_name, the noise node, what the message must say)
    ("uni_pc", "DisableNoise", ("sampler: uni_pc is not supported by DragonGuider", "combines the x0")),
    ("lcm", "DisableNoise", ("sampler: lcm is not supported by DragonGuider", "adds fresh noise")),
    ("dpm_2", "DisableNoise", ("sampler: dpm_2 is not supported by DragonGuider", "evaluates the model between")),
    ("ddim", "RandomNoise", ("noise: is random noise", "connect DisableNoise")),
]


@pytest.mark.slow
def test_misused_guider_graphs_are_refused_and_leave_the_valid_graph_unchanged(comfy_server):
    valid = demo_guider_prompt(STEPS, prefix="guider_valid")
    first, _ = run_prompt(comfy_server, valid)
    assert_success(first)
    _, (expected,) = image_arrays(comfy_server, first)

    for sampler_name, noise, texts in MISUSE:
        entry, _ = run_prompt(comfy_server, demo_guider_prompt(STEPS, sampler_name, noise, prefix="guider_misuse"))
        error = execution_error(entry)
        assert error is not None, f"{sampler_name}/{noise}: ran without an error"
        assert error["node_id"] == "sampler" and error["exception_type"].endswith("DragonInputError"), error
        message = error["exception_message"].strip()
        for text in texts:
            assert text in message, (sampler_name, noise, message)
        if noise == "DisableNoise":
            assert "euler or ddim" in message and "DragonDDIMSampler" in message, message
        assert "\n" not in message and len(message) < 400, message
        assert "sigmas" in cached_nodes(entry), "DragonBankSigmas was recomputed: the test would not see a leak"

    again, _ = run_prompt(comfy_server, demo_guider_prompt(STEPS, prefix="guider_valid_again"))
    assert_success(again)
    assert "sampler" not in cached_nodes(again) and "sigmas" in cached_nodes(again)
    _, (image,) = image_arrays(comfy_server, again)
    assert (image == expected).all()
