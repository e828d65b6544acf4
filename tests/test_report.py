"""deepdepth.report: loading a sweep dir, the study table, the plots (no training needed)."""
import json

import pytest

from deepdepth import report


def trial(combo, k, seed, test_err, trainable, verdict=None, status="ok", train_err=None):
    return {"combo": combo, "k": k, "seed": seed, "status": status, "test_err": test_err,
            "train_err": test_err if train_err is None else train_err, "trainable": trainable,
            "diverged": False, "verdict": trainable if verdict is None else verdict, "threshold": 0.2}


def fake_bisect_sweep(d):
    """A frontier.json as the bisect sweeper writes it: cnn_tanh (upper 24) and resnet (bound hit)."""
    history = [trial(0, 12, 0, 0.8865, False), trial(0, 6, 0, 0.2192, False), trial(0, 3, 0, 0.1324, True),
               trial(1, 12, 0, 0.05, True), trial(1, 12, 1, 0.06, True), trial(1, 12, 2, 0.9, False),
               trial(1, 15, 0, 0.07, True), trial(1, 15, 1, 0.06, True), trial(1, 15, 2, 0.08, True),
               {**trial(1, 18, 0, None, None, verdict=True), "status": "failed", "error": "boom"},
               trial(1, 18, 1, 0.1, True, verdict=True), trial(1, 18, 2, 0.3, False, verdict=True)]
    frontier = [
        {"combo": 0, "params": {"model": "cnn_tanh", "optim.lr": "0.01"}, "model": "cnn_tanh", "lr": 0.01,
         "k_star": 3, "confirmed": True, "hit_upper": False, "step": 3, "trials": 3, "failed_trials": 0,
         "rounds": 3, "nonmonotone": []},
        {"combo": 1, "params": {"model": "resnet", "optim.lr": "0.01"}, "model": "resnet", "lr": 0.01,
         "k_star": 18, "confirmed": None, "hit_upper": True, "step": 3, "trials": 8, "failed_trials": 1,
         "rounds": 3, "nonmonotone": []}]
    d.mkdir(parents=True, exist_ok=True)
    (d / "frontier.json").write_text(json.dumps({"frontier": frontier, "history": history}))
    return d


def test_load_and_table_from_frontier(tmp_path):
    d = fake_bisect_sweep(tmp_path / "sweep")
    trials = report.load_sweep(d)
    assert len(trials) == 12 and trials[0]["label"] == "cnn_tanh lr=0.01"
    stats = report.depth_stats(trials)
    k12 = stats[1][0]
    assert (k12["k"], k12["n"], k12["passes"], k12["trainable"]) == (12, 3, 2, True)
    assert k12["test_err"] == 0.06 and k12["test_err_mean"] == pytest.approx((0.05 + 0.06 + 0.9) / 3)
    assert stats[1][-1]["n"] == 2  # the failed trial is not counted
    rows = report.study_table(report.load_frontier(d), trials)
    assert rows[0]["k_star"] == 3 and rows[0]["first_untrainable"]["k"] == 6
    assert rows[1]["first_untrainable"] is None and "upper bound" in rows[1]["notes"]
    md = report.markdown(rows)
    lines = md.splitlines()
    assert lines[0].startswith("| variant | lr | k* |") and len([x for x in lines if x.startswith("|")]) == 4
    assert "| cnn_tanh | 0.01 | 3 | 3: 13.24% | 6: 21.92% | 3 |" in md
    assert "18: 20.00% (1/2 trainable)" in md and "1 failed trials" in md


def test_job_folders_without_frontier(tmp_path):
    """A plain multirun over k (no bisect sweeper) gets the same report from its result.json files."""
    for i, (k, errs) in enumerate([(3, [0.1, 0.12]), (6, [0.15, 0.5]), (9, [0.88, 0.9])]):
        job = tmp_path / str(i)
        job.mkdir()
        trials = [{"seed": s, "train_err": [0.5, e], "test_err": [0.6, e], "trainable": e < 0.2,
                   "diverged": False} for s, e in enumerate(errs)]
        (job / "result.json").write_text(json.dumps({"model": "cnn_elu", "lr": 0.01, "k": k, "threshold": 0.2,
                                                     "trials": trials}))
    trials = report.load_sweep(tmp_path)
    assert len(trials) == 6 and {t["label"] for t in trials} == {"cnn_elu lr=0.01"}
    (row,) = report.load_frontier(tmp_path, trials)
    assert row["k_star"] == 3 and row["confirmed"] is True and row["trials"] == 6  # k=6: 1 of 2 is no majority


def test_labels_show_the_parameters_that_vary():
    labels = report._labels([{"combo": 0, "model": "a", "lr": 0.01, "params": {"model": "a", "protocol": "original", "x": "1"}},
                             {"combo": 1, "model": "a", "lr": 0.01, "params": {"model": "a", "protocol": "correct", "x": "1"}}])
    assert labels == {0: "a lr=0.01 protocol=original", 1: "a lr=0.01 protocol=correct"}


def test_pure_part_does_not_import_matplotlib():
    src = open(report.__file__).read()
    top = src[: src.index("def plot(")]
    assert "import matplotlib" not in top and "import hydra" not in src and "import lightning" not in src


def test_cli_writes_table_and_plots(tmp_path, capsys):
    d = fake_bisect_sweep(tmp_path / "sweep")
    report.main([str(d), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert out.startswith("| variant | lr | k* |")
    pngs = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert pngs == ["error_vs_depth.png", "error_vs_depth_cnn_tanh_lr=0.01.png", "error_vs_depth_resnet_lr=0.01.png"]
    for p in pngs:
        assert (tmp_path / "out" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "out" / "report.md").read_text().startswith("| variant")


def test_cli_on_an_empty_dir_is_an_error(tmp_path):
    with pytest.raises(SystemExit):
        report.main([str(tmp_path)])
