"""The embedded demo model's data and training code. ``demo.synthetic`` needs numpy only; nothing here imports
ComfyUI at import time (the training script does when it runs)."""
