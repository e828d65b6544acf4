"""deepdepth.report.read_sweep: a sweep as a DataFrame, per trial and per combination."""
import shutil
import sys
from pathlib import Path

import pytest
from report_helpers import frontier_row, history_row, write_sweep

from deepdepth import report

pd = pytest.importorskip("pandas")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cpu_study(tmp_path):
    d = tmp_path / "cpu_study"
    d.mkdir()
    shutil.copy(ROOT / "results" / "cpu_study" / "frontier.json", d)
    return d


def test_committed_study_one_row_per_trial_with_its_settings_joined(cpu_study):
    df = report.read_sweep(cpu_study)
    assert len(df) == 66
    for column in ("model", "protocol", "lr", "epochs", "init", "norm", "residual", "k", "seed", "trainable",
                   "test_err", "train_err", "diverged"):
        assert column in df.columns, column
    tanh = df[df.model == "cnn_tanh"]
    assert set(tanh.init) == {"naive"} and set(tanh.lr) == {0.01} and set(tanh.protocol) == {"correct"}
    assert not tanh[tanh.k == 12].trainable.any() and tanh[tanh.k == 3].trainable.all()
    assert df.test_err.between(0, 1).all()  # a number per trial (the final epoch), not a list


def test_committed_study_per_combination_uses_the_reports_limit(cpu_study):
    combos = report.read_sweep(cpu_study, level="combinations")
    trials = report.load_sweep(cpu_study)
    expected = report.confidence_table(report.load_frontier(cpu_study, trials), trials)
    assert list(combos.model) == [r.combination.model for r in expected]
    for (_, row), conf in zip(combos.iterrows(), expected):
        assert row.limit_kind == conf.limit.kind and row.limit == str(conf.limit)
        assert row.k_star == conf.k_star_shown
        if conf.limit.kind == "k50":
            assert row.k50 == conf.limit.value
            assert row.k50_low == conf.limit.low or (conf.limit.low is None and pd.isna(row.k50_low))  # open: NaN
        else:
            assert pd.isna(row.k50)
    assert {"k_star", "k50", "k50_low", "k50_high", "censored", "lr", "protocol", "init"} <= set(combos.columns)


def test_tiny_sweep_over_lr(tmp_path):
    history = [history_row(c, k, s, s < passes) for c in (0, 1) for k, passes in ((6, 3), (9, 2 - c), (12, 0))
               for s in range(3)]
    frontier = [frontier_row(0, "cnn_tanh", 9, 12, lr=0.01), frontier_row(1, "cnn_tanh", 6, 12, lr=0.05)]
    d = write_sweep(tmp_path / "lr", frontier, history)
    df = report.read_sweep(d)
    assert len(df) == 18 and sorted(set(df.lr)) == [0.01, 0.05]
    assert df.groupby("lr").trainable.mean().round(3).to_dict() == {0.01: round(5 / 9, 3), 0.05: round(4 / 9, 3)}
    combos = report.read_sweep(d, level="combinations").set_index("lr")
    assert combos.loc[0.01, "k_star"] == 9 and combos.loc[0.05, "k_star"] == 6
    assert combos.loc[0.01, "label"] == "cnn_tanh lr=0.01"


def test_bad_level_and_missing_pandas_say_what_to_do(cpu_study, monkeypatch):
    with pytest.raises(ValueError, match="level must be one of .*'trial'"):
        report.read_sweep(cpu_study, level="trial")
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'deepdepth\[pandas\]'"):
        report.read_sweep(cpu_study)
