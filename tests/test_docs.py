"""The documentation site builds under --strict: a broken link, a missing page, a report.md no page
shows, or an API object mkdocstrings cannot find fails here (and so in CI)."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None,
    reason="mkdocs/mkdocstrings not installed: pip install -e '.[docs]'",
)


def _build(site: Path, config: Path = ROOT / "mkdocs.yml") -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
         "--site-dir", str(site)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def _public_modules() -> list[str]:
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    return hooks.public_modules()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = tmp_path_factory.mktemp("docs") / "site"
    done = _build(site)
    assert done.returncode == 0, done.stderr[-4000:]
    return site


def test_site_builds_strict_with_every_page(site):
    for page in ("guide/one-trial", "study", "theory", "speed", "reliability", "architecture",
                 "results/gpu_study", "results/cpu_study", "results/phase_diagram"):
        assert (site / page / "index.html").is_file(), page
    # each study page shows its committed report and its figures
    gpu = (site / "results/gpu_study/index.html").read_text(encoding="utf-8")
    assert "Confidence per combination" in gpu and "fraction_trainable.png" in gpu
    assert (site / "results/gpu_study/fraction_trainable.png").is_file()


def test_api_reference_has_a_rendered_page_per_public_module(site):
    modules = _public_modules()
    assert {"deepdepth.search", "deepdepth.sweep.driver", "deepdepth.meanfield",
            "hydra_plugins.deepdepth_bisect.bisect_sweeper"} <= set(modules)
    assert not [m for m in modules if any(p.startswith("_") for p in m.split("."))]
    for module in modules:
        html = (site / "api" / module / "index.html").read_text(encoding="utf-8")
        assert f'id="{module}"' in html, f"{module}: mkdocstrings rendered no object"


def test_a_broken_link_fails_the_strict_build(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# x\n\n[gone](missing.md)\n", encoding="utf-8")
    config = tmp_path / "mkdocs.yml"
    config.write_text("site_name: t\ndocs_dir: docs\n", encoding="utf-8")
    done = _build(tmp_path / "site", config)
    assert done.returncode != 0
    assert "missing.md" in done.stderr
