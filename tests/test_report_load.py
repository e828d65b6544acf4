"""deepdepth.report.load: the committed frontier.json, the sweeper's newer format, plain multiruns."""
import json
import shutil
from pathlib import Path

from report_helpers import frontier_row, history_row, write_sweep

from deepdepth import report
from deepdepth.report.stats import depth_points

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_cpu_study_loads(tmp_path):
    d = tmp_path / "cpu_study"
    d.mkdir()
    shutil.copy(ROOT / "results" / "cpu_study" / "frontier.json", d)
    trials = report.load_sweep(d)
    frontier = report.load_frontier(d, trials)
    assert len(trials) == 66 and [c.model for c in frontier][:2] == ["cnn_tanh", "resnet_nobn"]
    by = {c.model: c for c in frontier}
    assert by["cnn_tanh_deltaorth"].censored and by["cnn_tanh_deltaorth"].done  # hit_upper is read as censored
    assert by["cnn_tanh"].settings["lr"] == 0.01 and by["cnn_tanh"].protocol == "correct"
    assert {"epochs", "train_samples", "test_samples"} <= by["cnn_tanh"].assumed  # not recorded: defaults
    assert by["cnn_tanh"].label == "cnn_tanh" and by["cnn_tanh"].file_label == "cnn_tanh lr=0.01"


def test_newer_format_rows_refinement_seeds_and_failures(tmp_path):
    """censored/done/search on frontier rows, settings and shared_from on history rows, several
    rows per depth after refinement, a retried seed kept once, failed trials out of the statistics."""
    new = dict(protocol="correct", epochs=1, train_samples=1024, test_samples=256)
    history = [history_row(0, 6, s, s < 2, **new) for s in range(3)] + \
        [history_row(0, 6, s, True, **new) for s in (3, 4)] + \
        [{**history_row(0, 9, 0, None, **new), "status": "failed", "error": "boom"},
         {**history_row(0, 9, 1, True, **new), "status": "failed"},
         history_row(0, 9, 1, False, **new),  # the retry of seed 1
         history_row(1, 6, 0, True, shared_from=0, **new)]
    frontier = [frontier_row(0, "cnn_tanh", 6, 9, censored=False, done=False, search="bisect+refine"),
                frontier_row(1, "cnn_elu", 6, 6, censored=True, done=True, search="bisect")]
    d = write_sweep(tmp_path / "s", frontier, history)
    trials = report.load_sweep(d)
    points = depth_points(trials)
    assert [(p.k, p.passes, p.n) for p in points[0]] == [(6, 4, 5), (9, 0, 1)]
    combos = report.load_frontier(d, trials)
    assert not combos[0].done and combos[1].done and combos[1].censored and not combos[0].censored
    assert combos[0].settings["epochs"] == 1 and combos[0].settings["train_samples"] == 1024
    assert "epochs" not in combos[0].assumed
    assert combos[0].label == "cnn_tanh search=bisect+refine"  # only what varies is in the label
    md = report.render_report(combos, trials, mean_field=False)
    assert "unfinished" in md and "trials reused from combination 0" in md


def test_job_folders_without_frontier(tmp_path):
    """A plain multirun over k (no bisect sweeper) gets the same report from its result.json files."""
    for i, (proto, k, errs) in enumerate([("correct", 3, [0.1, 0.12]), ("correct", 6, [0.15, 0.5]),
                                          ("correct", 9, [0.88, 0.9]), ("original", 3, [0.9, 0.1])]):
        job = tmp_path / str(i)
        job.mkdir()
        trials = [{"seed": s, "train_err": [0.5, e], "test_err": [0.6, e], "trainable": e < 0.2, "diverged": False}
                  for s, e in enumerate(errs)]
        (job / "result.json").write_text(json.dumps({"model": "cnn_elu", "lr": 0.01, "k": k, "threshold": 0.2,
                                                     "protocol": proto, "epochs": 3, "trials": trials}))
    trials = report.load_sweep(tmp_path)
    assert len(trials) == 8 and {t.test_err for t in trials} >= {0.1, 0.9}
    correct, original = sorted(report.load_frontier(tmp_path, trials), key=lambda c: c.protocol)
    assert correct.k_star == 3 and correct.confirmed is True and correct.trials == 6  # k=6: 1 of 2 is no majority
    assert correct.label == "cnn_elu protocol=correct" and original.k_star is None


def test_settings_from_the_job_result_when_not_swept(tmp_path):
    d = write_sweep(tmp_path / "s", [frontier_row(0, "cnn_elu_bn", 3, 6), frontier_row(1, "cnn_elu_bn", 3, 6)],
                    [{**history_row(c, 3, 0, True), "job_dir": f"/elsewhere/{7 + c}"} for c in (0, 1)])
    (d / "8").mkdir()
    (d / "8" / "result.json").write_text(json.dumps({"protocol": "original", "epochs": 2}))
    combos = report.load_frontier(d)
    assert [c.protocol for c in combos] == ["correct", "original"] and combos[1].settings["epochs"] == 2
