"""deepdepth.report as a reader meets it: the command, report.md, the figures, the table helper."""
import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.figure import Figure
from report_helpers import combination, frontier_row, history_row, trials, write_sweep

from deepdepth import report
from deepdepth.report import figures, settings
from deepdepth.report.markdown import table

MAIN_PNGS = ["depth_limits.png", "error_vs_depth.png", "fraction_trainable.png"]


def small_sweep(d):
    """cnn_tanh (crosses 50% between 3 and 12) and resnet under protocol=original (every probe trained)."""
    history = [history_row(0, k, s, ok) for k, oks in ((3, [1, 1, 1]), (6, [1, 0, 0]), (12, [0, 0, 0]))
               for s, ok in enumerate(oks)]
    history += [history_row(1, k, s, True) for k in (12, 15) for s in range(3)]
    history += [{**history_row(1, 18, 0, None), "status": "failed", "error": "boom"}]
    frontier = [frontier_row(0, "cnn_tanh", 3, 24, params={"protocol": "correct"}),
                frontier_row(1, "resnet", 15, 15, hit_upper=True, confirmed=False, failed_trials=1,
                             params={"protocol": "original"})]
    return write_sweep(d, frontier, history, sweeper={"upper": 24, "seeds": 3})


def test_cli_writes_report_and_figures(tmp_path, capsys):
    d = small_sweep(tmp_path / "sweep")
    report.main([str(d), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert out.startswith("# Depth study: sweep\n\nSweeper: upper=24, seeds=3")
    for section in ("## Study table", "## Confidence per combination", "## Comparison with the original study",
                    "## Ranking by measured depth limit", "## Mean-field prediction", "## Figures"):
        assert section in out
    assert "| variant | protocol | k* |" in out and "- cnn_tanh: INSIDE, reference k* = 3 (6 failed" in out
    assert "| resnet | original | ≥ 15 (censored) |" in out and "> 15 (lower bound)" in out
    assert "1 failed trials" in out and "![fraction_trainable](fraction_trainable.png)" in out
    pngs = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert pngs == MAIN_PNGS[:2] + ["error_vs_depth_cnn_tanh_lr=0.01_protocol=correct.png",
                                    "error_vs_depth_resnet_lr=0.01_protocol=original.png", MAIN_PNGS[2]]
    assert all((tmp_path / "out" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert (tmp_path / "out" / "report.md").read_text() == out  # everything printed is in report.md


def test_cli_without_plots_or_mean_field(tmp_path, capsys):
    d = small_sweep(tmp_path / "sweep")
    report.main([str(d), "--no-plots", "--no-mean-field"])
    out = capsys.readouterr().out
    assert "## Mean-field" not in out and "## Figures" not in out and not list(d.glob("*.png"))
    assert (d / "report.md").read_text() == out


def test_cli_on_an_empty_dir_is_an_error(tmp_path):
    with pytest.raises(SystemExit):
        report.main([str(tmp_path)])


def test_only_figures_imports_matplotlib(tmp_path):
    d = small_sweep(tmp_path / "sweep")
    code = ("import sys; from deepdepth import report as r; t = r.load_sweep(sys.argv[1]); "
            "r.render_report(r.load_frontier(sys.argv[1], t), t); "
            "assert not [m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'lightning')]")
    subprocess.run([sys.executable, "-c", code, str(d)], check=True)
    package = Path(figures.__file__).parent
    assert [p.name for p in package.glob("*.py") if "matplotlib.use(" in p.read_text()] == ["__main__.py"]


def test_figures_are_returned_labelled_and_on_integer_log_axes():
    conf = report.confidence_table(
        [combination(0, "cnn_tanh", 3, model__init="naive"), combination(1, "cnn_tanh", 6, model__init="fan_in:0.5",
                                                                          protocol="original")],
        trials(0, {3: (3, 3), 6: (1, 3), 12: (0, 3)}) + trials(1, {3: (3, 3), 6: (3, 3), 48: (1, 3)}))
    for r in conf:
        r.combination.label = "cnn_tanh model.init=" + r.combination.settings["model.init"]
    drawn = dict(figures.all_figures(conf))
    assert set(drawn) >= set(figures.FIGURES) and all(isinstance(f, Figure) for f in drawn.values())
    panels = [ax for ax in drawn["fraction_trainable"].axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["cnn_tanh model.init=naive", "cnn_tanh model.init=fan_in:0.5"]
    legend = [t.get_text() for t in panels[1].get_legend().get_texts()]
    assert legend == ["protocol=original, 3 seeds per depth"]
    ax = drawn["error_vs_depth"].axes[0]
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["3", "5", "10", "20", "30", "50"]
    assert "running mean over the last epoch" in drawn["error_vs_depth"].axes[1].get_title()
    fig = drawn["depth_limits"]
    fig.canvas.draw()  # the legend lies inside the figure's own area
    box = fig.legends[0].get_window_extent()
    assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= fig.bbox.width and box.y1 <= fig.bbox.height


def test_one_set_of_trials_is_drawn_once_for_both_protocols():
    """A BatchNorm-free variant's two protocols read the same trials: one panel entry and one
    depth-limit row, marked 'both'; a variant whose protocols trained their own trials keeps two,
    even where they trained as many seeds at each depth."""
    shared = {12: (3, 3), 15: (1, 3), 18: (0, 3)}
    conf = report.confidence_table(
        [combination(0, "resnet_nobn", 12), combination(1, "resnet_nobn", 12, protocol="original"),
         combination(2, "cnn_elu_bn", 15), combination(3, "cnn_elu_bn", 12, protocol="original")],
        trials(0, shared) + trials(1, shared) + trials(2, shared) + trials(3, shared, err_pass=0.06))
    for r in conf:
        r.combination.label = f"{r.combination.model} protocol={r.combination.protocol}"
    drawn = dict(figures.all_figures(conf))
    panels = [ax for ax in drawn["fraction_trainable"].axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["resnet_nobn", "cnn_elu_bn"]
    assert [t.get_text() for t in panels[0].get_legend().get_texts()] == [
        "protocols: both (the same trials), 3 seeds per depth"]
    assert len(panels[1].get_legend().get_texts()) == 2
    rows = [t.get_text() for t in drawn["depth_limits"].axes[0].get_yticklabels()]
    assert len(rows) == 3 and rows[0].startswith("resnet_nobn (protocols: both)")


def test_markdown_table():
    assert table(["a", "b"], [[1, "x|y"]]) == "| a | b |\n|---|---|\n| 1 | x\\|y |"
    assert table(["name", "n"], [["ab", 10]], pad=True).splitlines() == ["| name | n  |", "|------|----|",
                                                                         "| ab   | 10 |"]


def test_assumed_defaults_are_the_package_config():
    from deepdepth.api import compose_config
    cfg = compose_config()
    assert settings.DEFAULTS == {"lr": cfg.optim.lr, "protocol": cfg.protocol, "epochs": cfg.trainer.max_epochs,
                                 "train_samples": cfg.data.train_samples, "test_samples": cfg.data.test_samples,
                                 "criterion": cfg.trainability.criterion, "threshold": cfg.trainability.threshold}
