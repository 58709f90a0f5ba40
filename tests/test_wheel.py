"""The wheel on its own: build it, install it into a fresh venv and run ``dlbasics`` and the tour from an empty folder.

    python -m pytest tests/test_wheel.py

The source tree is copied first, so the build's ``build/`` and ``*.egg-info`` never land in the checkout (a stale
``build/lib`` would leak deleted files into later wheels). The fresh venv reuses this interpreter's installed
dependencies through a ``.pth`` line naming its site-packages: a plain path line adds the folder without running
the ``.pth`` files inside it, so an editable dlbasics installed there stays out and the wheel is what runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
SKIP_AT_ROOT = {".git", ".venv", "build", "data", "lightning_logs", "wandb", "benchmarks", "tests", ".whl", ".gl"}
SKIP_ANYWHERE = {"__pycache__", ".pytest_cache", ".ruff_cache"}


def copy_source(dest: Path) -> Path:
    def ignore(folder: str, names: list[str]) -> set[str]:
        at_root = Path(folder) == ROOT
        return {n for n in names if n in SKIP_ANYWHERE or n.endswith(".egg-info") or (at_root and n in SKIP_AT_ROOT)}

    shutil.copytree(ROOT, dest, ignore=ignore)
    return dest


def run(cmd: list[str | Path], **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def test_wheel_installs_and_runs_from_an_empty_folder(tmp_path):
    src = copy_source(tmp_path / "src")
    build = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path, src])
    for warning in ("SetuptoolsDeprecationWarning", "BuildBackendWarning", "license"):
        assert warning not in build.stdout + build.stderr, build.stdout + build.stderr
    (wheel,) = tmp_path.glob("dlbasics-*.whl")

    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        metadata = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    shipped = {f"dlbasics/configs/{p.relative_to(CONFIGS).as_posix()}" for p in CONFIGS.rglob("*.yaml")}
    assert {"dlbasics/configs/rule_classifier.yaml", "dlbasics/configs/trainer/ddp.yaml"} <= shipped <= names
    assert "dlbasics/configs/logger/wandb.yaml" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "License-Expression: MIT" in metadata

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    # pip runs from our site-packages, where an editable dlbasics may be: --ignore-installed installs the wheel anyway.
    pip = [sys.executable, "-m", "pip", "--python", python]
    run([*pip, "install", "--no-deps", "--no-index", "--ignore-installed", wheel])
    site = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    reused = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (Path(site) / "reuse_dependencies.pth").write_text("".join(f"{p}\n" for p in reused))

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env |= {"WANDB_MODE": "disabled", "PYTHONNOUSERSITE": "1"}
    empty = tmp_path / "empty"
    empty.mkdir()
    where = run([python, "-c", "import dlbasics.resources as r; print(r.__file__); print(r.config_dir())"], cwd=empty,
                env=env).stdout.split()  # fmt: skip
    assert all(Path(p).is_relative_to(venv) for p in where), where
    run([venv / "bin" / "dlbasics", "fit", "--config", "rule_classifier", "--trainer.fast_dev_run", "true"], cwd=empty,
        env=env)  # fmt: skip
    tour = tmp_path / "tour"
    run([venv / "bin" / "dlbasics-tour", "--quick", "--only", "linear_regression", "--out", tour], cwd=empty, env=env)
    assert list(tour.glob("*/REPORT.md"))
