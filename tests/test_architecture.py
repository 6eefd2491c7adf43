"""The shape of the code, checked rather than hoped for: the import-linter contracts in pyproject.toml, no import
cycle (imports inside functions included), and files and functions of a size one can read."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "napari_mia"
MAX_FILE_LINES = 450
MAX_FUNCTION_LINES = 80


def test_the_import_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    r = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout and "5 kept" in r.stdout, r.stdout[-2000:]


def test_no_import_cycle_even_through_imports_inside_functions():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "import_cycles.py"), str(PACKAGE)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_cycle_check_finds_a_cycle_made_inside_a_function(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def later():\n    from .a import x\n    return x\n")
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "import_cycles.py"), str(pkg)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "pkg.a" in r.stdout and "pkg.b" in r.stdout, r.stdout + r.stderr


def test_files_and_functions_stay_readable():
    """No source file over 450 lines; no function over 80 unless the comment above it says why."""
    too_long = []
    for f in sorted(PACKAGE.rglob("*.py")):
        text = f.read_text()
        lines = text.splitlines()
        if len(lines) > MAX_FILE_LINES:
            too_long.append(f"{f.relative_to(ROOT)}: {len(lines)} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                if node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES and \
                        not lines[first - 2].strip().startswith("# Over 80 lines:"):
                    too_long.append(f"{f.relative_to(ROOT)}: {node.name}() has {node.end_lineno - node.lineno + 1} "
                                    "lines and no '# Over 80 lines: why' above it")
    assert not too_long, "\n".join(too_long)
