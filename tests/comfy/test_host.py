"""The real ComfyUI host in-process: the tiny model samples through the built-in KSampler path, and the pack
loads as ComfyUI loads it: quietly, lightly, and without ever taking ComfyUI's start-up down."""
import importlib
import json
import logging
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from dragon_test_helpers import REPO_ROOT
from dragon_test_helpers.architecture import documented_nodes
from dragon_dev import bootstrap, tiny_model as tm

STEPS = 6


def ksample(t, seed, cfg=5.0, positive=None):
    import comfy.sample

    latent = t.latent["samples"]
    noise = comfy.sample.prepare_noise(latent, seed)
    with torch.inference_mode():  # as ComfyUI's executor runs a node
        return comfy.sample.sample(t.model, noise, STEPS, cfg, "ddim", "ddim_uniform", positive or t.positive,
                                   t.negative, latent, seed=seed, disable_pbar=True)


def test_host_runs_on_the_cpu_and_writes_below_the_session_dir(comfy_host):
    import comfy.model_management as mm
    import folder_paths

    assert comfy_host.args.cpu is True
    assert mm.get_torch_device() == torch.device("cpu")
    assert (comfy_host.tree / "comfy" / "model_management.py").is_file()
    for directory in (folder_paths.get_output_directory(), folder_paths.get_input_directory(),
                      folder_paths.get_temp_directory()):
        assert directory.startswith(str(comfy_host.base_directory)), directory
    assert str(REPO_ROOT) not in [str(p) for p in sys.path], "the repo root would shadow ComfyUI's nodes.py"
    assert importlib.import_module("nodes").__file__.startswith(str(comfy_host.tree)), "wrong `nodes` module"


def test_tiny_model_has_cross_attention_at_every_level_of_encoder_and_decoder(tiny_model):
    from comfy.ldm.modules.attention import SpatialTransformer

    unet = tiny_model.model.model.diffusion_model
    def levels(blocks):
        return [i for i, block in enumerate(blocks) if any(isinstance(m, SpatialTransformer) for m in block)]

    assert levels(unet.input_blocks) == [1, 3]  # one res block per level, index 2 is the downsample
    assert levels(unet.output_blocks) == [0, 1, 2, 3]
    assert any(isinstance(m, SpatialTransformer) for m in unet.middle_block)
    weights = unet.state_dict()
    assert all(torch.isfinite(w).all() for w in weights.values())
    # seeded, not left uninitialised: the same seed gives the same weights, another seed others
    again = tm.build_tiny_model(seed=tiny_model.seed).model.diffusion_model.state_dict()
    other = tm.build_tiny_model(seed=tiny_model.seed + 1).model.diffusion_model.state_dict()
    assert all(torch.equal(weights[k], again[k]) for k in weights)
    assert not torch.equal(weights["out.2.weight"], other["out.2.weight"])


def test_tiny_model_samples_through_the_ksampler_path(tiny_model):
    out = ksample(tiny_model, seed=7)
    assert out.shape == tiny_model.latent["samples"].shape == (1, 4, 16, 16)
    assert torch.isfinite(out).all()
    assert out.abs().max() > 1e-3  # the random UNet moved the sample away from the empty latent
    assert torch.equal(out, ksample(tiny_model, seed=7)), "same seed, different result"
    assert not torch.allclose(out, ksample(tiny_model, seed=8)), "the seed is ignored"
    # the conditioning reaches the UNet's cross-attention
    other_prompt = tm.conditioning(seed=99)
    assert not torch.allclose(out, ksample(tiny_model, seed=7, positive=other_prompt))


@pytest.mark.slow
def test_sd15_architecture_builds_and_runs_one_step(comfy_host):
    model = tm.build_model(tm.sd15_config(), seed=0)
    unet = model.model.diffusion_model
    assert 850e6 < sum(p.numel() for p in unet.parameters()) < 870e6  # SD-1.5's UNet: 859.5 M parameters
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    cond = tm.conditioning(seed=1, tokens=77, context_dim=768)[0][0]
    with torch.inference_mode():
        eps = model.model.apply_model(x, torch.tensor([1.0]), c_crossattn=cond)
    assert eps.shape == x.shape and torch.isfinite(eps).all()


# -- the pack as ComfyUI sees it ------------------------------------------------------------------------
def test_pack_exports_what_comfyui_reads(dragon_pack):
    classes, names = dragon_pack.NODE_CLASS_MAPPINGS, dragon_pack.NODE_DISPLAY_NAME_MAPPINGS
    assert isinstance(classes, dict) and isinstance(names, dict)
    assert classes, "the pack exports no node at all"
    assert dragon_pack.WEB_DIRECTORY == "./web"
    assert (REPO_ROOT / "web").is_dir()
    assert set(names) <= set(classes), f"display names for unknown nodes: {set(names) - set(classes)}"
    for node_id, cls in classes.items():  # the classic node API, as nodes.py and execution.py use it
        assert callable(getattr(cls, "INPUT_TYPES", None)), node_id
        assert isinstance(cls.INPUT_TYPES(), dict), node_id
        assert isinstance(cls.RETURN_TYPES, tuple), node_id
        assert callable(getattr(cls, cls.FUNCTION, None)), f"{node_id}.FUNCTION = {cls.FUNCTION!r} is not a method"
        assert cls.CATEGORY.startswith("DragonDiffusion"), (node_id, cls.CATEGORY)


def test_pack_nodes_match_the_documented_contract(dragon_pack):
    documented = documented_nodes()
    classes = dragon_pack.NODE_CLASS_MAPPINGS
    undocumented = sorted(set(classes) - set(documented))
    assert not undocumented, f"nodes missing from docs/ARCHITECTURE.md's table (the public interface): {undocumented}"
    for node_id, cls in classes.items():
        spec = documented[node_id]
        assert cls.CATEGORY == spec.category, (node_id, cls.CATEGORY, spec.category)
        assert tuple(cls.RETURN_TYPES) == spec.outputs, (node_id, cls.RETURN_TYPES, spec.outputs)


def test_pyproject_is_read_by_comfyui_as_registry_metadata(comfy_host):
    from comfy_config import config_parser

    config = config_parser.extract_node_configuration(str(REPO_ROOT))
    assert config is not None, "ComfyUI could not parse pyproject.toml"
    assert config.project.name == "comfyui-dragondiffusion"
    assert config.tool_comfy.publisher_id == "dragondiffusion"
    assert config.tool_comfy.display_name == "DragonDiffusion drag editing"
    # Absolute URLs: the registry and the Manager show them outside the checkout.
    repository = config.project.urls.repository
    assert repository.startswith("https://github.com/"), repository
    owner_repo = repository.removeprefix("https://github.com/")
    icon_prefix = f"https://raw.githubusercontent.com/{owner_repo}/main/"
    assert config.tool_comfy.icon.startswith(icon_prefix), config.tool_comfy.icon
    assert (REPO_ROOT / config.tool_comfy.icon.removeprefix(icon_prefix)).is_file(), config.tool_comfy.icon
    assert config.project.supported_os == ["OS Independent"]
    assert config.project.supported_accelerators == ["GPU :: NVIDIA CUDA"]
    assert config.project.supported_comfyui_version == ">=0.3.75"
    assert config.project.supported_comfyui_frontend_version == ">=1.32.9"
    assert config.project.license.text == "GPL-3.0-or-later"
    assert "GNU GENERAL PUBLIC LICENSE" in (REPO_ROOT / "LICENSE").read_text()
    assert not config.tool_comfy.web, "[tool.comfy] web would register web/ a second time (WEB_DIRECTORY does)"


def test_every_node_has_search_aliases_and_a_tooltip_per_output(dragon_pack):
    """The node search finds the pack by what users type ("drag", "move object", "point edit"), and every output
    says what it is for."""
    aliases = {}
    for node_id, cls in dragon_pack.NODE_CLASS_MAPPINGS.items():
        names = getattr(cls, "SEARCH_ALIASES", None)
        assert isinstance(names, list) and names, f"{node_id} has no SEARCH_ALIASES"
        assert all(isinstance(a, str) and a.strip() == a and a for a in names), (node_id, names)
        aliases[node_id] = names
        tips = getattr(cls, "OUTPUT_TOOLTIPS", None)
        assert isinstance(tips, tuple) and len(tips) == len(cls.RETURN_TYPES), f"{node_id}: one tooltip per output"
        assert all(isinstance(tip, str) and len(tip) > 20 for tip in tips), (node_id, tips)
    for term in ("drag", "move object", "point edit"):
        assert term in aliases["DragonEditDrag"] or term in aliases["DragonEditMove"], term


IMPORT_PROBE = textwrap.dedent("""
    import asyncio, importlib.util, json, logging, os, sys
    tree, pack_dir, base, result_path = sys.argv[1:5]
    sys.path.insert(0, tree)
    from comfy.cli_args import args
    args.cpu = True
    args.base_directory = base
    import utils.extra_config  # as main.py, before nodes.py puts <tree>/comfy first on sys.path
    logging.disable(logging.CRITICAL)  # ComfyUI's own start-up chatter is not under test
    # what ComfyUI's main.py has imported by the time it loads custom nodes
    import comfy.utils, comfy.model_management, execution, server, nodes, latent_preview, node_helpers
    asyncio.run(nodes.init_builtin_extra_nodes())
    logging.disable(logging.NOTSET)
    before = set(sys.modules)
    sys.stdout.flush()
    os.write(1, b"@@IMPORT-BEGIN@@\\n")
    spec = importlib.util.spec_from_file_location("probe_pack", os.path.join(pack_dir, "__init__.py"),
                                                  submodule_search_locations=[pack_dir])
    module = importlib.util.module_from_spec(spec)
    sys.modules["probe_pack"] = module
    spec.loader.exec_module(module)
    sys.stdout.flush()
    os.write(1, b"@@IMPORT-END@@\\n")
    new_top = sorted({m.split(".")[0] for m in set(sys.modules) - before} - {"probe_pack"})
    json.dump({"new_top_level": new_top, "nodes": sorted(module.NODE_CLASS_MAPPINGS)}, open(result_path, "w"))
""")


def test_importing_the_pack_prints_nothing_and_loads_nothing_heavy(comfy_host, dragon_pack, tmp_path):
    """In a fresh interpreter prepared like ComfyUI's start-up, importing the pack writes nothing to stdout
    and imports no module outside the standard library that ComfyUI had not loaded already."""
    result = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, str(comfy_host.tree), str(REPO_ROOT), str(tmp_path), str(result)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "@@IMPORT-END@@" in proc.stdout, proc.stdout[-2000:]
    printed = proc.stdout.split("@@IMPORT-BEGIN@@\n", 1)[1].split("@@IMPORT-END@@", 1)[0]
    assert printed == "", f"importing the pack printed to stdout:\n{printed}"
    data = json.loads(result.read_text())
    heavy = [m for m in data["new_top_level"] if m not in sys.stdlib_module_names]
    assert heavy == [], f"the pack imports modules ComfyUI had not loaded: {heavy}"
    assert data["nodes"] == sorted(dragon_pack.NODE_CLASS_MAPPINGS)


def copy_pack(tmp_path):
    """A copy of the pack's Python files in a temporary folder, to break on purpose."""
    target = tmp_path / "pack"
    shutil.copytree(REPO_ROOT, target, ignore=shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", "tests", "test-artifacts", "out", ".train", "*.png"))
    return target


def test_a_broken_node_family_costs_only_its_own_nodes(comfy_host, dragon_pack, tmp_path, caplog):
    families = importlib.import_module("dragon_pack.nodes")._FAMILIES
    broken_family = families[0]
    pack = copy_pack(tmp_path)
    (pack / "nodes" / f"{broken_family}.py").write_text('raise RuntimeError("simulated failure in a family")\n')
    try:
        broken_mod = importlib.import_module(f"dragon_pack.nodes.{broken_family}")
        lost = set(getattr(broken_mod, "NODE_CLASS_MAPPINGS", {}))
    except ModuleNotFoundError:
        lost = set()
    try:
        with caplog.at_level(logging.INFO):
            module = bootstrap.load_pack("broken_family_pack", pack)  # must not raise
        assert set(module.NODE_CLASS_MAPPINGS) == set(dragon_pack.NODE_CLASS_MAPPINGS) - lost
        records = [r for r in caplog.records if r.name.startswith("broken_family_pack")]
        assert len(records) == 1, [r.getMessage() for r in records]
        assert broken_family in records[0].getMessage()
        assert "simulated failure in a family" in records[0].getMessage()
        assert records[0].levelno >= logging.ERROR
    finally:
        bootstrap.unload("broken_family_pack")


def test_a_broken_nodes_package_leaves_comfyui_running_with_one_log_line(comfy_host, tmp_path, caplog):
    pack = copy_pack(tmp_path)
    (pack / "nodes" / "__init__.py").write_text("def broken(:\n")
    try:
        with caplog.at_level(logging.INFO):
            module = bootstrap.load_pack("broken_nodes_pack", pack)  # must not raise
        assert module.NODE_CLASS_MAPPINGS == {} and module.NODE_DISPLAY_NAME_MAPPINGS == {}
        assert module.WEB_DIRECTORY == "./web"
        messages = [r.getMessage() for r in caplog.records if r.name.startswith("broken_nodes_pack")]
        assert len(messages) == 1 and "SyntaxError" in messages[0], messages
    finally:
        bootstrap.unload("broken_nodes_pack")
