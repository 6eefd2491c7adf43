#!/usr/bin/env bash
# Does a package exported by napari-mia pass bioimage.io's model test where napari-mia is not installed?
# A fresh venv with bioimageio.core, torch, segmentation-models-pytorch and onnxruntime only (pinned like
# napari-mia), then bioimageio.core's test_model on every weight format, on the CPU, offline.
#   benchmarks/bioimageio_separate_env.sh PACKAGE.zip [VENV]
set -euo pipefail
PACKAGE=$(realpath "$1")
VENV=${2:-/tmp/bioimageio-check}
HERE=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    PIP_CONSTRAINT="$HERE/requirements/constraints.txt" "$VENV/bin/python" -m pip install -q --no-compile \
        "bioimageio.core==0.11.0" torch segmentation_models_pytorch onnxruntime
fi
"$VENV/bin/python" -m pip freeze | grep -i -E "^(bioimageio|torch=|segmentation|onnx|pydantic=)"
cd /tmp  # no napari-mia source tree on the path either
if "$VENV/bin/python" -c "import napari_mia" 2>/dev/null; then echo "napari-mia is importable: not a separate env"; exit 1; fi
HF_HUB_OFFLINE=1 "$VENV/bin/python" - "$PACKAGE" <<'PY'
import sys
from bioimageio.core import test_model
import yaml, zipfile

path = sys.argv[1]
formats = list(yaml.safe_load(zipfile.ZipFile(path).read("rdf.yaml"))["weights"])
ok = True
for fmt in formats:
    summary = test_model(path, weight_format=fmt, devices=["cpu"])
    print(f"{fmt}: {summary.status}")
    for d in summary.details:
        print(f"    {d.status:7s} {d.name}")
    ok &= summary.status == "passed"
sys.exit(0 if ok else 1)
PY
