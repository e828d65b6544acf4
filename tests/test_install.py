"""The package as a user installs it: the wheel is built, installed into a fresh venv (torch and
the other dependencies come from the outer environment, through a .pth file), and its console
scripts run a trial, a bisect sweep (plugin discovered from the wheel, jobs pickled by the
joblib launcher) and a report from a directory outside the checkout; tab completion works."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, tiny

pytestmark = pytest.mark.slow
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "deepdepth", "conf", "hydra_plugins")


def run(cmd: list, cwd: Path, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def build_wheel(tmp: Path) -> Path:
    """The wheel of a copy of the checkout's sources (no build files left in the checkout).
    Offline with the outer environment's setuptools when it has one recent enough."""
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    offline = ["--no-build-isolation", "--no-index"] if _has_setuptools(77) else []
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *offline, "-w", tmp / "dist", "."],
        cwd=src, env=os.environ.copy())
    (wheel,) = (tmp / "dist").glob("deepdepth-*.whl")
    return wheel


def _has_setuptools(major: int) -> bool:
    if importlib.util.find_spec("setuptools") is None:
        return False
    from importlib.metadata import version
    return int(version("setuptools").split(".")[0]) >= major


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel, the venv's bin folder, a user's environment, a work folder outside the checkout)."""
    tmp = tmp_path_factory.mktemp("install")
    wheel = build_wheel(tmp)
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp, env=os.environ.copy())
    python = venv / "bin" / "python"
    # the wheel first, into an empty venv; then the outer packages (torch, Lightning, Hydra, joblib launcher)
    run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel],
        cwd=tmp, env=os.environ.copy())
    purelib = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                  cwd=tmp, env=os.environ.copy()).stdout.strip()
    Path(purelib, "outer_environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PYTHONWARNINGS="ignore", PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    work = tmp / "work"
    work.mkdir()
    return wheel, venv / "bin", env, work, Path(purelib)


def test_wheel_holds_every_module_config_file_and_both_scripts(installed):
    wheel = installed[0]
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(ROOT).as_posix() for folder in ("deepdepth", "hydra_plugins/deepdepth_bisect")
               for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts}
    configs = {"deepdepth/conf/" + p.relative_to(ROOT / "conf").as_posix()
               for p in (ROOT / "conf").rglob("*") if p.suffix in (".yaml", ".py") and "__pycache__" not in p.parts}
    assert "hydra_plugins/deepdepth_bisect/_impl.py" in modules and "deepdepth/conf/logger/csv.yaml" in configs
    assert modules | configs <= names, sorted((modules | configs) - names)
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "deepdepth-train = deepdepth.train:main" in scripts and "deepdepth-report = deepdepth.cli:report" in scripts


def test_installed_trial_runs_from_outside_the_checkout(installed, mnist_root):
    _, bin_dir, env, work, purelib = installed
    proc = run([bin_dir / "python", "-c", "import deepdepth, hydra_plugins.deepdepth_bisect as b; "
                "print(deepdepth.__file__); print(b.__file__)"], cwd=work, env=env)
    assert all(line.startswith(str(purelib)) for line in proc.stdout.split())  # the wheel's, not the checkout's
    run([bin_dir / "deepdepth-train", "model=cnn_tanh", "k=3", *tiny(mnist_root), "hydra.run.dir=run"],
        cwd=work, env=env)
    result = json.loads((work / "run" / "result.json").read_text())
    assert result["model"] == "cnn_tanh" and result["k"] == 3 and len(result["test_err"]) == 1
    assert (work / "run" / "metrics.csv").exists()  # logger=csv, the default
    assert f"path: {purelib / 'deepdepth' / 'conf'}" in (work / "run" / ".hydra" / "hydra.yaml").read_text()


def test_installed_bisect_sweep_with_pickling_launcher_and_report(installed, mnist_root):
    _, bin_dir, env, work, _ = installed
    proc = run([bin_dir / "deepdepth-train", "-m", "hydra/sweeper=bisect", "hydra.sweeper.upper=6",
                "hydra.sweeper.seeds=1", "model=resnet_nobn", "trainability.threshold=1.0",
                "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *tiny(mnist_root), "hydra.sweep.dir=sweep"],
               cwd=work, env=env)
    assert "Joblib" in proc.stdout + proc.stderr
    (row,) = json.loads((work / "sweep" / "frontier.json").read_text())["frontier"]
    assert row["k_star"] == 6 and row["censored"] and [p["k"] for p in row["probe_history"]] == [3, 6]
    report = run([bin_dir / "deepdepth-report", "sweep", "--no-plots"], cwd=work, env=env)
    assert report.stdout.startswith("# Depth study: sweep") and (work / "sweep" / "report.md").exists()


def test_tab_completion_script_and_its_answers(installed):
    _, bin_dir, env, work, _ = installed
    script = run([bin_dir / "deepdepth-train", "-sc", "install=bash"], cwd=work, env=env).stdout
    assert script.rstrip().endswith("complete -o nospace -o default -F hydra_bash_completion deepdepth-train")
    for line, answers in (("deepdepth-train logger=", {"logger=csv", "logger=tensorboard", "logger=none"}),
                          ("deepdepth-train hydra/sweeper=", {"hydra/sweeper=bisect"}),
                          ("deepdepth-train model=resne", {"model=resnet", "model=resnet_nobn_fixup"})):
        query = run([bin_dir / "deepdepth-train", "-sc", "query=bash"], cwd=work,
                    env={**env, "COMP_LINE": line, "COMP_POINT": str(len(line))})
        assert answers <= set(query.stdout.split()), (line, query.stdout)
