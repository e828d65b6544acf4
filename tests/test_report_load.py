"""deepdepth.report.load: the committed frontier.json, the sweeper's newer format, plain multiruns."""
import json
import shutil
from pathlib import Path

from report_helpers import frontier_row, history_row, write_sweep

from deepdepth import report
from deepdepth.report.provenance import device_shares, wall_seconds
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
                frontier_row(1, "cnn_elu", 6, 6, censored=True, done=True, search="bisect", skipped=[12, 15])]
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
    assert combos[1].skipped == (12, 15) and "not trained, above a failure of their round: 12, 15" in md


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


def test_where_the_trials_trained(tmp_path):
    """Per device: trials (a shared or crashed one not counted), jobs and their training time;
    a history row from before rows recorded it takes its job folder's result.json."""
    rows = [history_row(0, 3, s, True, device="NVIDIA H200", job_dir="/gpu/box/0", job_seconds=4.0) for s in (0, 1)]
    rows += [history_row(0, 6, s, False, device="cpu", job_dir=f"/here/{s + 1}", job_seconds=600.0) for s in (0, 1)]
    rows += [history_row(1, 3, 0, True, device="NVIDIA H200", job_dir="/gpu/box/0", job_seconds=4.0, shared_from=0,
                         status="shared"),
             {**history_row(0, 9, 0, None, device="cpu", job_dir="/here/3", job_seconds=1.0), "status": "failed"},
             history_row(0, 9, 1, False, job_dir="/gpu/box/4")]  # an older row: device and time in the job folder
    d = write_sweep(tmp_path / "s", [frontier_row(0, "cnn_tanh", 3, 24), frontier_row(1, "cnn_tanh", 3, 24)], rows)
    (d / "4").mkdir()
    (d / "4" / "result.json").write_text(json.dumps({"k": 9, "device": "cuda:0", "seconds": 2.5, "trials": []}))
    trials = report.load_sweep(d)
    shares = device_shares(trials)
    assert [(s.device, s.trials, s.jobs, s.seconds) for s in shares] == [
        ("NVIDIA H200", 2, 1, 4.0), ("cpu", 2, 2, 1200.0), ("cuda:0 (GPU model not recorded)", 1, 1, 2.5)]
    md = report.render_report(report.load_frontier(d, trials), trials, mean_field=False)
    assert ("Trained on: NVIDIA H200, 2 trials in 1 jobs (4s of job time); cpu, 2 trials in 2 jobs "
            "(20m00s of job time); cuda:0 (GPU model not recorded), 1 trials in 1 jobs (2s of job time).") in md


def test_wall_time_counts_jobs_that_ran_at_once_once(tmp_path):
    """Two CPU jobs of 600 s side by side, then one of 300 s: 30 minutes of job time, 15 of wall."""
    ends = ["2026-12-07T10:10:00+00:00", "2026-12-07T10:10:00+00:00", "2026-12-07T10:15:00+00:00"]
    rows = [history_row(0, 3 * (i + 1), 0, i < 2, device="cpu", job_dir=f"/here/{i}") for i in range(3)]
    d = write_sweep(tmp_path / "s", [frontier_row(0, "cnn_tanh", 3, 24)], rows)
    for i, (end, sec) in enumerate(zip(ends, (600.0, 600.0, 300.0))):
        (d / str(i)).mkdir()
        (d / str(i) / "result.json").write_text(json.dumps({"seconds": sec, "finished_at": end, "trials": []}))
    trials = report.load_sweep(d)
    (share,) = device_shares(trials)
    assert (share.seconds, share.wall) == (1500.0, 900.0)
    assert "cpu, 3 trials in 3 jobs (25m00s of job time, 15m00s wall)." in report.render_report(
        report.load_frontier(d, trials), trials, mean_field=False)
    assert wall_seconds([(600.0, ends[0]), (60.0, None)]) is None  # a job without its end: no wall time


def test_a_plain_multirun_says_where_it_trained_and_keeps_each_replicas_depth(tmp_path):
    job = tmp_path / "0"
    job.mkdir()
    trials = [{"k": k, "seed": 0, "test_err": [e], "train_err": [e], "trainable": e < 0.2} for k, e in ((3, 0.1), (6, 0.9))]
    (job / "result.json").write_text(json.dumps({"model": "cnn_tanh", "k": 6, "depths": [3, 6], "trials": trials,
                                                 "device": "cpu", "seconds": 12.0}))
    got = report.load_sweep(tmp_path)
    assert sorted((t.k, t.trainable) for t in got) == [(3, True), (6, False)]  # a mixed-depth pack's own depths
    assert [(s.device, s.trials, s.jobs, s.seconds) for s in device_shares(got)] == [("cpu", 2, 1, 12.0)]


def test_a_null_sample_count_is_recorded_not_assumed(tmp_path):
    full = dict(protocol="correct", epochs=3, train_samples=None, test_samples=None)
    d = write_sweep(tmp_path / "s", [frontier_row(0, "cnn_tanh", 3, 24), frontier_row(1, "cnn_elu", None, 24)],
                    [history_row(0, 3, 0, True, **full)])
    combos = report.load_frontier(d)
    assert not {"epochs", "train_samples", "test_samples"} & combos[0].assumed
    assert combos[0].settings["train_samples"] == 60000
    md = report.render_report(combos, report.load_sweep(d), mean_field=False)
    assert "Not recorded" not in md  # combination 1 has no trial yet: it assumes nothing
    assert "Trained on" not in md  # no row names its device


def test_the_precision_section_says_what_the_refinement_reached_and_cost(tmp_path):
    refine = {"width": None, "fraction": 0.25, "level": 0.99, "reached": False, "seed_scheme": "independent",
              "stopped": "width not reached: every candidate depth has 4 trials", "seeds_at": {"3": 4, "6": 4}}
    rows = [history_row(0, 3, s, True, job_dir="/x/0", job_seconds=30.0) for s in range(2)]
    rows += [history_row(0, 3, s, True, job_dir="/x/2", job_seconds=40.0) for s in (2, 3)]
    rows += [history_row(0, 6, s, s == 0, job_dir="/x/1", job_seconds=50.0) for s in range(4)]
    rows += [history_row(1, 3, s, True, job_dir="/x/0", job_seconds=30.0, shared_from=0, status="shared") for s in range(2)]
    d = write_sweep(tmp_path / "s", [frontier_row(0, "cnn_tanh", 3, 24, refine=refine),
                                     frontier_row(1, "cnn_tanh", 3, 24, params={"protocol": "original"})], rows)
    trials = report.load_sweep(d)
    md = report.render_report(report.load_frontier(d, trials), trials, mean_field=False)
    section = md.split("## Precision (refinement phase)", 1)[1]
    assert "job time (search and refinement)" in section
    row = next(line for line in section.splitlines() if line.startswith("| cnn_tanh"))
    assert "| 0.25 of k50 | no | 8 | 3: 4; 6: 4 | 2m00s | width not reached" in row
