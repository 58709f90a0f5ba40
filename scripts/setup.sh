#!/usr/bin/env bash
# Create .venv and install dlbasics with its dev tools and the ONNX export and sweep (Optuna) extras.
#   bash scripts/setup.sh            (README's quick start runs it for you)
# PyPI's torchvision wheels are built against PyPI's torch: install them as a matching pair first, so a
# preinstalled CPU-only torch cannot be mixed with a CUDA torchvision ("operator torchvision::nms does not exist").
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if ! .venv/bin/python -c "import torch, torchvision" 2>/dev/null; then
  .venv/bin/python -m pip install -q "torch==${TORCH_VERSION:-2.14.1}" "torchvision==${TORCHVISION_VERSION:-0.29.1}"
fi
.venv/bin/python -m pip install -q -e ".[dev,export,sweep]"
.venv/bin/python -c "import torch, torchvision, lightning; print('torch', torch.__version__, '| torchvision', torchvision.__version__, '| lightning', lightning.__version__)"
