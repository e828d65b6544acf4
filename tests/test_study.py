"""The whole study pipeline in its smoke form, then the notebook on its output (both as CI runs them)."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, SHARED_DATA, run_train, write_mnist

pytestmark = pytest.mark.e2e  # the study as CI runs it, then the notebook: left out of make test-fast


@pytest.fixture(scope="module")
def data_overrides(tmp_path_factory):
    if (SHARED_DATA / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").exists():
        return [f"data.root={SHARED_DATA}"]
    root = write_mnist(tmp_path_factory.mktemp("data"), n_train=1024, n_test=256)
    return [f"data.root={root}", "data.check_md5=false", "data.download=false"]


@pytest.fixture(scope="module")
def smoke_study(tmp_path_factory, data_overrides):
    sweep = tmp_path_factory.mktemp("study") / "smoke"
    run_train("+experiment=depth_study_smoke", *data_overrides, f"hydra.sweep.dir={sweep}",
              cwd=sweep.parent, multirun=True)
    return sweep


def test_smoke_study_covers_every_variant_under_both_protocols(smoke_study):
    doc = json.loads((smoke_study / "frontier.json").read_text())
    combos = {(row["params"]["model"], row["params"]["protocol"]) for row in doc["frontier"]}
    variants = {"cnn_tanh", "cnn_tanh_newinit", "cnn_elu", "cnn_elu_bn", "resnet", "cnn_tanh_bn_oldinit", "resnet_nobn"}
    assert combos == {(v, p) for v in variants for p in ("correct", "original")}
    assert all(len(json.loads(p.read_text())["trials"]) == 2 for p in smoke_study.glob("*/result.json"))
    assert (smoke_study / "frontier.csv").exists()


def test_report_on_the_study(smoke_study, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "deepdepth.report", str(smoke_study), "--out", str(tmp_path)],
                          capture_output=True, text=True, check=True)
    assert "cnn_tanh_bn_oldinit" in proc.stdout
    assert (tmp_path / "report.md").exists() and list(tmp_path.glob("*.png"))


# Cells the test runs before and after the notebook's own: count the matplotlib Figures each cell
# creates (by execution count), then print the counts, so every figure can be matched to a display.
COUNT_FIGURES = """
import json
import matplotlib.figure
from IPython import get_ipython

_figures_made, _figures_now = {}, [0]
_figure_init = matplotlib.figure.Figure.__init__
def _counting_init(self, *args, **kwargs):
    _figures_now[0] += 1
    _figure_init(self, *args, **kwargs)
matplotlib.figure.Figure.__init__ = _counting_init
get_ipython().events.register("pre_run_cell", lambda info: _figures_now.__setitem__(0, 0))
get_ipython().events.register("post_run_cell", lambda result: _figures_made.__setitem__(result.execution_count, _figures_now[0]))
"""
PRINT_FIGURE_COUNTS = "print(json.dumps(_figures_made))"


def test_notebook_executes(smoke_study, data_overrides, tmp_path):
    """The shipped notebook runs on tiny data, displays every figure it makes in the cell that
    makes it, renders the report as markdown (not printed as raw text) and writes its trials to
    a temporary folder, nothing into the checkout."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(ROOT / "notebooks" / "depth_study.ipynb", as_version=4)
    own = len(nb.cells)
    nb.cells = [nbformat.v4.new_code_cell(COUNT_FIGURES), *nb.cells, nbformat.v4.new_code_cell(PRINT_FIGURE_COUNTS)]
    root = next(o.split("=", 1)[1] for o in data_overrides if o.startswith("data.root="))
    env = {"DEEPDEPTH_DATA": root, "DEEPDEPTH_STUDY": str(smoke_study), "DEEPDEPTH_NOTEBOOK_TINY": "1",
           "DEEPDEPTH_NOTEBOOK_OVERRIDES": " ".join(o for o in data_overrides if not o.startswith("data.root=")),
           "TMPDIR": str(tmp_path), "MPLBACKEND": "Agg"}
    checkout_before = sorted((ROOT / "notebooks").rglob("*"))
    old = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    finally:
        for key, value in old.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    code = [cell for cell in nb.cells[1:own + 1] if cell.cell_type == "code"]
    errors = [o for cell in code for o in cell.outputs if o.output_type == "error"]
    assert not errors
    made = {int(n): count for n, count in json.loads(nb.cells[-1].outputs[0].text).items()}
    shown = {cell.execution_count: sum("image/png" in o.get("data", {}) for o in cell.outputs) for cell in code}
    assert sum(made.values()) >= 5, "the notebook makes its figures"
    assert shown == {cell.execution_count: made.get(cell.execution_count, 0) for cell in code}, \
        "each figure displayed once, by the cell that made it"
    markdown = [o.data["text/markdown"] for cell in code for o in cell.outputs if "text/markdown" in o.get("data", {})]
    printed = "".join(o.text for cell in code for o in cell.outputs if o.output_type == "stream")
    assert any("## Study table" in text for text in markdown), "the report is rendered as markdown"
    assert "## Study table" not in printed and "|---" not in printed, "no markdown printed as raw text"
    assert len(list(tmp_path.glob("deepdepth-notebook-*/*/result.json"))) == 2  # its trials, in a temporary folder
    assert sorted((ROOT / "notebooks").rglob("*")) == checkout_before


def test_modern_study_ranks_all_ten_variants(data_overrides, tmp_path):
    """`+experiment=depth_study_modern` searches the modern variants beside the study's seven and
    the report ranks every one of them (tiny data, depths 3 and 6, one seed)."""
    sweep = tmp_path / "modern"
    run_train("+experiment=depth_study_modern", *data_overrides, f"hydra.sweep.dir={sweep}",
              "data.train_samples=512", "data.test_samples=256", "data.batch_size=32", "trainer.max_epochs=1",
              "optim.lr=0.05", "hydra.sweeper.upper=6", "hydra.sweeper.upper_for=null", "hydra.sweeper.seeds=1",
              "hydra.sweeper.parallel=2", "hydra.sweeper.confirm=false", cwd=tmp_path, multirun=True)
    doc = json.loads((sweep / "frontier.json").read_text())
    variants = {"cnn_tanh", "cnn_tanh_newinit", "cnn_elu", "cnn_elu_bn", "resnet", "cnn_tanh_bn_oldinit",
                "resnet_nobn", "cnn_tanh_deltaorth", "resnet_nobn_skipinit", "resnet_nobn_fixup"}
    assert {(row["params"]["model"], row["params"]["protocol"]) for row in doc["frontier"]} == \
        {(v, "correct") for v in variants}
    proc = subprocess.run([sys.executable, "-m", "deepdepth.report", str(sweep), "--out", str(tmp_path / "report")],
                          capture_output=True, text=True, check=True)
    ranking = proc.stdout.split("## Ranking by measured depth limit", 1)[1].split("\n## ", 1)[0]
    ranked = {line.split(" | ")[3] for line in ranking.splitlines() if line.startswith("| correct |")}
    assert ranked == variants
