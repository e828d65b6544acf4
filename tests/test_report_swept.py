"""The limit against a swept key: the tests between values, the groups and ranks the report draws
from them, sections left out where they do not apply, and trials added from other folders."""
import json

import pytest

from conftest import run_train, tiny
from report_helpers import combination, frontier_row, history_row, trials, write_sweep
from deepdepth.report.cli import main
from deepdepth.report.load import ReportError, load_frontier, load_sweep
from deepdepth.report.merge import add_runs
from deepdepth.report.render import render_report
from deepdepth.report.stats import confidence_table, rank_variants
from deepdepth.report.swept import key_sweeps, order
from deepdepth.science.difference import equal_k50_test, paired_test, sign_test


def test_sign_test_is_the_exact_two_sided_binomial():
    assert sign_test(0, 0) == 1.0
    assert sign_test(0, 4) == pytest.approx(2 / 16)
    assert sign_test(4, 0) == sign_test(0, 4)
    assert sign_test(1, 9) == pytest.approx(2 * 11 / 1024)
    assert sign_test(5, 5) == 1.0


def test_paired_test_pairs_the_same_seed_at_the_same_depth_only():
    a = [(9, 1, True), (9, 2, True), (12, 1, True), (12, 7, False), (15, None, True)]
    b = [(9, 1, False), (9, 2, True), (12, 1, False), (12, 8, True), (15, None, False)]
    p = paired_test(a, b)
    assert (p.pairs, p.a_only, p.b_only) == (3, 2, 0)
    assert p.p == pytest.approx(0.5)
    assert "3 pairs, 2 vs 0" in str(p)
    assert str(paired_test(a, [(21, 1, True)])) == "no shared seeds"


def _logistic(k50, depths, seeds=12):
    """Trials whose fraction trained at depth k falls from all to none around k50."""
    out = []
    for k in depths:
        passes = round(seeds / (1 + (k / k50) ** 8))
        out += [(k, s, s < passes) for s in range(seeds)]
    return out


def test_equal_k50_test_tells_a_moved_limit_from_the_same_one():
    depths = [6, 9, 12, 15, 18, 24, 30]
    assert equal_k50_test(_logistic(12, depths), _logistic(12, depths)) > 0.9
    assert equal_k50_test(_logistic(10, depths), _logistic(20, depths)) < 1e-3
    assert equal_k50_test([], _logistic(12, depths)) == 1.0


def test_values_sort_by_their_numbers():
    assert sorted(["0.03", 0.003, 0.01], key=order) == [0.003, 0.01, "0.03"]
    assert sorted(["fan_in:1.5", "fan_in:0.7"], key=order) == ["fan_in:0.7", "fan_in:1.5"]
    assert sorted(["[8, 16, 32]", "[2,4,8]", "[4,8,16]"], key=order) == ["[2,4,8]", "[4,8,16]", "[8, 16, 32]"]
    assert sorted(["original", "correct"], key=order) == ["correct", "original"]


def lr_sweep():
    """resnet_nobn at three learning rates (none the original study's 0.01): the limit falls as lr
    grows; seeds shared across lr."""
    frontier = [combination(i, "resnet_nobn", optim__lr=lr) for i, lr in enumerate(["0.1", "0.003", "0.03"])]
    counts = [{9: (6, 6), 12: (3, 6), 15: (0, 6)}, {15: (6, 6), 18: (3, 6), 21: (0, 6)},
              {12: (6, 6), 15: (3, 6), 18: (0, 6)}]
    return frontier, [t for i, c in enumerate(counts) for t in trials(i, c)]


def test_a_swept_lr_is_one_group_ordered_by_lr_and_ranked_across_it():
    frontier, ts = lr_sweep()
    (sweep,) = key_sweeps(confidence_table(frontier, ts), ts)
    assert sweep.key == "lr" and sweep.group == "resnet_nobn"
    assert [sweep.value(r) for r in sweep.rows] == ["0.003", "0.03", "0.1"]
    assert sweep.ranks == [1, 2, 3]
    first = sweep.steps[0]
    # k=15 and 18 were probed under both: 6/6 and 3/6 at 0.003, 3/6 and 0/6 at 0.03
    assert (first.paired.pairs, first.paired.a_only, first.paired.b_only) == (12, 6, 0)
    assert first.paired.p == pytest.approx(2 / 64)
    assert first.p_k50 < 0.05


def test_rows_of_one_set_of_trials_make_no_comparison():
    """A BatchNorm-free variant's two protocols are the same trials: nothing to compare."""
    frontier = [combination(0, "cnn_tanh", protocol="correct"), combination(1, "cnn_tanh", protocol="original")]
    ts = trials(0, {3: (3, 3), 6: (1, 3)})
    ts += [t.__class__(**{**t.__dict__, "combo": 1}) for t in ts]
    assert key_sweeps(confidence_table(frontier, ts), ts) == []


def test_ranking_is_across_the_key_when_each_setting_has_one_row():
    frontier, ts = lr_sweep()
    ranking = rank_variants(confidence_table(frontier, ts))
    assert sorted(x.rank for x in ranking) == [1, 2, 3]


def test_report_of_an_lr_sweep_has_the_key_section_and_leaves_out_what_does_not_apply():
    frontier, ts = lr_sweep()
    text = render_report(frontier, ts)
    assert "## Limit against lr" in text
    assert "| resnet_nobn | 0.03 |" in text and "rank across lr" in text
    assert "All combinations ranked together" in text
    assert "## Comparison with the original study" not in text  # no row under the reference's lr
    assert "## Mean-field prediction" not in text and "mean-field k*" not in text  # residual: no theory
    tanh = render_report([combination(0, "cnn_tanh")], trials(0, {3: (3, 3), 6: (0, 3)}))
    assert "## Comparison with the original study" in tanh and "## Mean-field prediction" in tanh
    assert "## Limit against" not in tanh


def _sweep_dir(tmp_path):
    frontier = [frontier_row(0, "resnet_nobn", 12, 48, lr=0.003), frontier_row(1, "resnet_nobn", 9, 48, lr=0.01)]
    history = [history_row(0, k, s, k <= 12) for k in (9, 12, 15) for s in range(3)]
    history += [history_row(1, k, s, k <= 9) for k in (9, 12) for s in range(3)]
    return write_sweep(tmp_path / "sweep", frontier, history)


def _run_dir(tmp_path, lr=0.003, k=15, seeds=(0, 3, 4), trained=(True, True, False), **fields):
    d = tmp_path / "check"
    d.mkdir(exist_ok=True)
    record = {"model": "resnet_nobn", "k": k, "lr": lr, "epochs": 3, "protocol": "correct", "criterion": "test",
              "threshold": 0.2, "train_samples": None, "test_samples": None, "widths": [4, 8, 16], **fields,
              "trials": [{"seed": s, "trainable": y, "test_err": [0.05 if y else 0.9]} for s, y in zip(seeds, trained)]}
    (d / "result.json").write_text(json.dumps(record))
    return d


def test_trials_of_another_folder_join_the_combination_of_their_settings(tmp_path):
    sweep, run = _sweep_dir(tmp_path), _run_dir(tmp_path)
    ts = load_sweep(sweep)
    frontier = load_frontier(sweep, ts)
    more, lines = add_runs(frontier, ts, [run])
    assert len(more) == len(ts) + 2  # seed 0 at k=15 is already in the sweep: counted once
    assert [t.combo for t in more[len(ts):]] == [0, 0]
    assert lines == [f"- {run}: 2 trials into {frontier[0].label} (1 already in the sweep, counted once)"]


@pytest.mark.parametrize("fields, named", [({"lr": 0.05}, "lr=0.05"), ({"widths": [8, 16, 32]}, "widths [8, 16, 32]")])
def test_a_run_no_combination_fits_is_refused_naming_it(tmp_path, fields, named):
    sweep = _sweep_dir(tmp_path)
    run = _run_dir(tmp_path, **fields)
    ts = load_sweep(sweep)
    with pytest.raises(ReportError, match="matches no combination of the sweep") as e:
        add_runs(load_frontier(sweep, ts), ts, [run])
    assert named in str(e.value) and str(run / "result.json") in str(e.value)


def test_cli_add_counts_the_added_trials_and_says_where_they_went(tmp_path, capsys):
    sweep, run = _sweep_dir(tmp_path), _run_dir(tmp_path)
    main([str(sweep), "--no-plots", "--add", str(run)])
    text = (sweep / "report.md").read_text()
    assert "Trials added from other folders" in text and "2 trials into" in text
    assert "15: 1/5" in text  # k=15 of lr=0.003: 0/3 from the sweep, then 1 of 2 added
    with pytest.raises(SystemExit) as e:
        main([str(sweep), "--no-plots", "--add", str(tmp_path / "nowhere")])
    assert e.value.code == 2 and "no result.json there" in capsys.readouterr().err


@pytest.mark.e2e
def test_a_bisect_sweep_over_lr_gets_its_table_and_figure_without_user_code(tmp_path, mnist_root):
    d = tmp_path / "lr"
    run_train("hydra/sweeper=bisect", "model=resnet_nobn", "optim.lr=0.003,0.3", "hydra.sweeper.upper=9",
              "hydra.sweeper.seeds=2", *tiny(mnist_root), f"hydra.sweep.dir={d}", cwd=tmp_path, multirun=True)
    main([str(d)])
    text = (d / "report.md").read_text()
    assert "## Limit against lr" in text and "| resnet_nobn | 0.003 |" in text and "| resnet_nobn | 0.3 |" in text
    assert (d / "limit_vs_lr.png").stat().st_size > 0
