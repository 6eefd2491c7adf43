"""Build napari-mia as PyPI would ship it and check the wheel as a user gets it.

    python scripts/wheel_check.py [--out DIR] [--wheel-only]

Builds the sdist and, from it, the wheel (`python -m build --no-isolation`: the build tools come from the
running environment, so no network is needed; `make wheel-check` runs it with the pinned constraints), checks that
the wheel holds the plugin manifest, the sample data, the nuclei starter and the licence and stays under 30 MB,
installs it with pip into a new virtual environment, and there checks that:

- `napari_mia` is imported from the installed wheel, never from the source tree;
- npe2 reads the manifest from the installed distribution, it validates and all its python names import;
- the sample-data command of the manifest returns the image and its labels;
- the nuclei starter loads from the installed package (`--model nuclei`), offline;
- the `napari-mia` command runs (`--help`).

The new environment has no packages of its own besides the wheel: its dependencies (torch, napari, ...) are found
through a `.pth` line naming the running environment's site-packages. That is what a line in a .pth file does
(the folder is added to sys.path; the editable install's own .pth files there are not run), so the source tree
stays out of sight while nothing is downloaded again.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What a user's installation needs beyond the code: npe2 finds the plugin through napari.yaml, File > Open Sample
# reads the two TIFFs, and the licence travels with the wheel.
REQUIRED_IN_WHEEL = (
    "napari_mia/napari.yaml",
    "napari_mia/sample_data/nuclei.tif",
    "napari_mia/sample_data/nuclei_labels.tif",
    "napari_mia/starters/nuclei.pt",
    "napari_mia/cli/__init__.py",
    "napari_mia/engine/trainer.py",
    "napari_mia/widgets/training.py",
)


# The nuclei starter ships inside the wheel (nothing is downloaded at run time): it must stay small to install.
MAX_WHEEL_MB = 30


class WheelCheckError(RuntimeError):
    """The package as built or installed is not what a user needs."""


def _env() -> dict:
    """The environment for the child processes: no PYTHONPATH, so only what is installed can be imported."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    constraints = ROOT / "requirements" / "constraints.txt"
    env.setdefault("PIP_CONSTRAINT", str(constraints))
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env(), **kw)
    if r.returncode != 0:
        raise WheelCheckError(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
    return r


def build(outdir: Path, wheel_only: bool = False) -> tuple[Path | None, Path]:
    """Build into `outdir`; the wheel from the sdist (as `python -m build` does) unless `wheel_only`.

    `wheel_only` builds the wheel from a copy of the source tree, so that no `build/` folder of an earlier
    build in the checkout (whose stale files setuptools would pack) is used.
    """
    outdir.mkdir(parents=True, exist_ok=True)
    if wheel_only:
        with tempfile.TemporaryDirectory(prefix="mia-src-") as tmp:
            src = Path(tmp) / "src"
            # The files git tracks (and the untracked ones it does not ignore), as in the sdist; .git for the version.
            files = _run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT).stdout.split("\0")
            for f in filter(None, files):
                if (ROOT / f).is_file():
                    (src / f).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(ROOT / f, src / f)
            version = _run([sys.executable, "-m", "setuptools_scm"], cwd=ROOT).stdout.strip()
            env_version = {"SETUPTOOLS_SCM_PRETEND_VERSION_FOR_NAPARI_MIA": version}
            r = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir", str(outdir),
                                str(src)], capture_output=True, text=True, env={**_env(), **env_version})
            if r.returncode != 0:
                raise WheelCheckError(f"building the wheel failed:\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
        sdist = None
    else:
        _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(outdir), str(ROOT)])
        sdist = max(outdir.glob("napari_mia-*.tar.gz"), key=os.path.getmtime)
    wheel = max(outdir.glob("napari_mia-*.whl"), key=os.path.getmtime)
    return sdist, wheel


def package_files() -> list[str]:
    """The package's files as the wheel names them: every file git tracks under src/napari_mia."""
    r = subprocess.run(["git", "ls-files", "src/napari_mia"], cwd=ROOT, capture_output=True, text=True)
    return [f[len("src/"):] for f in r.stdout.split()] if r.returncode == 0 else []


def wheel_problems(wheel: Path) -> list[str]:
    """What a user's installation needs and the wheel lacks (empty when nothing)."""
    names = set(zipfile.ZipFile(wheel).namelist())
    # Every module and data file of the source tree (a subpackage or data folder left out of the packaging
    # rules would be missing for users only), and the few a user's session needs first in any case.
    missing = [n for n in dict.fromkeys([*REQUIRED_IN_WHEEL, *package_files()]) if n not in names]
    licences = [n for n in names if n.split("/")[0].endswith(".dist-info") and n.endswith("/licenses/LICENSE")]
    if not licences:
        missing.append("*.dist-info/licenses/LICENSE")
    metadata = next((n for n in names if n.endswith(".dist-info/METADATA")), None)
    text = zipfile.ZipFile(wheel).read(metadata).decode() if metadata else ""
    if "License-Expression: BSD-3-Clause" not in text:
        missing.append("METADATA: License-Expression: BSD-3-Clause")
    if "License-File: LICENSE" not in text:
        missing.append("METADATA: License-File: LICENSE")
    megabytes = wheel.stat().st_size / 1e6
    if megabytes > MAX_WHEEL_MB:
        missing.append(f"the wheel is {megabytes:.1f} MB, over {MAX_WHEEL_MB} MB")
    entry_points = next((n for n in names if n.endswith(".dist-info/entry_points.txt")), None)
    eps = zipfile.ZipFile(wheel).read(entry_points).decode() if entry_points else ""
    for needed in ("[napari.manifest]", "napari-mia = napari_mia:napari.yaml", "napari-mia = napari_mia.cli:main"):
        if needed not in eps:
            missing.append(f"entry_points.txt: {needed}")
    return missing


def install(wheel: Path, venv: Path) -> Path:
    """A new virtual environment holding the wheel; its dependencies seen through the running environment."""
    if venv.exists():
        shutil.rmtree(venv)
    # The venv module makes it from the base interpreter, without system site-packages.
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "--no-compile",
          "-q", str(wheel)])
    purelib = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (purelib / "_napari_mia_dependencies.pth").write_text("".join(f"{p}\n" for p in sorted(deps)))
    return python


# Runs inside the new environment; prints one JSON object.
_PROBE = r"""
import json, sys
from pathlib import Path
import numpy as np
import napari_mia
from npe2 import PluginManifest
from npe2.manifest.utils import import_python_name

out = {"module": napari_mia.__file__, "prefix": sys.prefix}
pm = PluginManifest.from_distribution("napari-mia")
out["manifest"] = pm.name
out["manifest_file"] = str(getattr(pm, "_yaml_path", "") or "")
if IMPORTS:
    pm.validate_imports()  # every python_name of the manifest imports
    out["imports"] = True
commands = {c.id: c.python_name for c in pm.contributions.commands}
samples = []
for s in pm.contributions.sample_data:
    layers = import_python_name(commands[s.command])()
    samples.append({"key": s.key, "layers": [
        {"type": t, "name": meta.get("name"), "shape": list(np.shape(d)), "dtype": str(np.asarray(d).dtype),
         "nonzero": int(np.count_nonzero(d))} for d, meta, t in layers]})
out["samples"] = samples
# The starter, read from the installed package, offline (float16 on disk, float32 once read)
from napari_mia.engine import modelfile, starters
content = modelfile.load("nuclei")
out["starter"] = {"file": str(starters.starter_path("nuclei")), "weights": len(content["state_dict"]),
                  "float32": all(str(v.dtype) != "torch.float16" for v in content["state_dict"].values())}
print(json.dumps(out))
"""


def probe(python: Path, imports: bool = True) -> dict:
    """Import the plugin in the new environment and open its sample data through the manifest."""
    r = _run([str(python), "-c", _PROBE.replace("IMPORTS", str(bool(imports)))], cwd=python.parents[1])
    return json.loads(r.stdout.strip().splitlines()[-1])


def probe_problems(python: Path, result: dict) -> list[str]:
    problems = []
    prefix = Path(result["prefix"]).resolve()
    if prefix != python.parents[1].resolve():
        problems.append(f"ran in {prefix}, not in the new environment")
    if not Path(result["module"]).resolve().is_relative_to(prefix):
        problems.append(f"napari_mia was imported from {result['module']}, not from the installed wheel")
    if result["manifest"] != "napari-mia":
        problems.append(f"the manifest is named {result['manifest']!r}")
    layers = [la for s in result["samples"] for la in s["layers"]]
    kinds = sorted(la["type"] for la in layers)
    if kinds != ["image", "labels"]:
        problems.append(f"the sample data gives layers {kinds}, not an image and its labels")
    elif any(la["nonzero"] == 0 or len(la["shape"]) < 2 for la in layers):
        problems.append(f"the sample data is empty: {layers}")
    elif len({tuple(la["shape"]) for la in layers}) != 1:
        problems.append(f"the sample image and labels differ in shape: {layers}")
    starter = result.get("starter") or {}
    if not starter or not Path(starter["file"]).resolve().is_relative_to(prefix):
        problems.append(f"the nuclei starter was not loaded from the installed wheel: {starter}")
    elif not starter["weights"] or not starter["float32"]:
        problems.append(f"the nuclei starter loaded wrong: {starter}")
    return problems


def cli_help(python: Path) -> str:
    """`napari-mia --help` of the console script pip wrote into the new environment."""
    return _run([str(python.parent / "napari-mia"), "--help"], cwd=python.parents[1]).stdout


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "dist", help="where the sdist and wheel go (default: dist/)")
    p.add_argument("--venv", type=Path, default=None, help="the new environment (default: a temporary folder)")
    p.add_argument("--wheel-only", action="store_true", help="build only the wheel, from a copy of the tree")
    args = p.parse_args(argv)

    sdist, wheel = build(args.out, wheel_only=args.wheel_only)
    print(f"built: {wheel.name}" + (f" and {sdist.name}" if sdist else ""))
    problems = wheel_problems(wheel)
    if sdist is not None:
        import tarfile

        top = sdist.name[: -len(".tar.gz")]
        names = set(tarfile.open(sdist).getnames())
        problems += [f"sdist lacks {n}" for n in ("LICENSE", "pyproject.toml", "src/napari_mia/napari.yaml",
                                                  "src/napari_mia/sample_data/nuclei.tif") if f"{top}/{n}" not in names]
    print("wheel contents:", "OK" if not problems else "; ".join(problems))
    with tempfile.TemporaryDirectory(prefix="mia-wheel-venv-") as tmp:
        venv = args.venv or Path(tmp) / "venv"
        python = install(wheel, venv)
        result = probe(python)
        print(f"imported napari_mia from {result['module']}")
        print(f"npe2 manifest {result['manifest']!r}: validates, every python_name imports")
        for s in result["samples"]:
            print(f"sample {s['key']!r}: " + ", ".join(f"{la['type']} {la['name']!r} {la['shape']} {la['dtype']}"
                                                       for la in s["layers"]))
        problems += probe_problems(python, result)
        first = cli_help(python).splitlines()[0]
        print(f"napari-mia --help: {first}")
    if problems:
        print("PROBLEMS:\n- " + "\n- ".join(problems))
        return 1
    print("wheel check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
