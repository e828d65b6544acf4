"""deepdepth.report: loading a sweep dir, the study table, the plots (no training needed)."""
import json
import subprocess
import sys

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


def test_pure_part_does_not_import_matplotlib(tmp_path):
    src = open(report.__file__).read()
    top = src[: src.index("def plot(")]
    assert "import matplotlib" not in top and "import hydra" not in src and "import lightning" not in src
    d = fake_bisect_sweep(tmp_path / "sweep")
    code = ("import sys; from deepdepth import report as r; t = r.load_sweep(sys.argv[1]); "
            "r.render_report(r.load_frontier(sys.argv[1], t), t); "
            "assert not [m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'lightning')]")
    subprocess.run([sys.executable, "-c", code, str(d)], check=True)


def test_cli_writes_table_and_plots(tmp_path, capsys):
    d = fake_bisect_sweep(tmp_path / "sweep")
    report.main([str(d), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert out.startswith("# Depth study: sweep\n")
    for section in ("## Study table", "## Confidence per combination", "## Comparison with the original study",
                    "## Ranking by measured depth limit", "## Mean-field prediction", "## Figures"):
        assert section in out
    assert "| variant | lr | k* |" in out and "| variant | protocol | lr | per depth:" in out
    assert "- cnn_tanh: INSIDE, reference k* = 3" in out and "- resnet: " in out
    assert "![fraction_trainable](fraction_trainable.png)" in out
    pngs = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert pngs == ["depth_limits.png", "error_vs_depth.png", "error_vs_depth_cnn_tanh_lr=0.01.png",
                    "error_vs_depth_resnet_lr=0.01.png", "fraction_trainable.png"]
    for p in pngs:
        assert (tmp_path / "out" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "out" / "report.md").read_text() == out  # everything printed is in report.md


def test_cli_without_plots_or_mean_field(tmp_path, capsys):
    d = fake_bisect_sweep(tmp_path / "sweep")
    report.main([str(d), "--no-plots", "--no-mean-field"])
    out = capsys.readouterr().out
    assert "## Mean-field" not in out and "## Figures" not in out and not list(d.glob("*.png"))
    assert (d / "report.md").read_text() == out


def test_cli_on_an_empty_dir_is_an_error(tmp_path):
    with pytest.raises(SystemExit):
        report.main([str(tmp_path)])


# ---- confidence, reference comparison, ranking, mean field ----------------------------------------
from deepdepth.confidence import half_trainable_depth, wilson  # noqa: E402


def conf_row(variant, k50=None, low=None, high=None, k_star=None, protocol="correct", lr=0.01, upper=450,
             step=3, hit_upper=False):
    """A confidence_table row with a chosen 50%-depth interval."""
    return {"combo": 0, "label": f"{variant} lr={lr}", "variant": variant, "protocol": protocol, "lr": lr,
            "seeds": 3, "rule": "majority", "step": step, "upper": upper, "k_star": k_star, "hit_upper": hit_upper,
            "confirmed": True, "trials": 3, "crashed": 0, "k50": k50, "k50_low": low, "k50_high": high,
            "depths": [{"k": 3, "n": 3, "passes": 3, "fraction": 1.0, "low": 0.4385, "high": 1.0, "diverged": 0}]}


def test_confidence_table_has_wilson_columns_and_a_k50_interval(tmp_path):
    d = fake_bisect_sweep(tmp_path / "sweep")
    trials = report.load_sweep(d)
    conf = report.confidence_table(report.load_frontier(d, trials), trials)
    tanh, resnet = conf
    assert (tanh["variant"], tanh["protocol"], tanh["lr"], tanh["seeds"], tanh["k_star"]) == \
        ("cnn_tanh", "correct", 0.01, 1, 3)
    k12 = resnet["depths"][0]
    assert (k12["k"], k12["n"], k12["passes"]) == (12, 3, 2) and k12["fraction"] == pytest.approx(2 / 3)
    assert (k12["low"], k12["high"]) == pytest.approx(wilson(2, 3))
    assert resnet["depths"][-1]["n"] == 2 and resnet["trials"] == 8 and resnet["crashed"] == 1  # failed trial out
    # k50 pools every counted trial (one (k, trained) pair per seed)
    expect = half_trainable_depth([12, 12, 12, 15, 15, 15, 18, 18], [1, 1, 0, 1, 1, 1, 1, 0])
    assert (resnet["k50"], resnet["k50_low"], resnet["k50_high"]) == (expect.k50, expect.low, expect.high)
    assert tanh["k50"] is not None and 3 <= tanh["k50"] <= 6
    md = report.confidence_markdown(conf)
    assert "12: 2/3 = 67% [21–94%]" in md and "18: 1/2 = 50% [9–91%]" in md
    assert report.interval_str(tanh) in md and "18 (search's top)" in md


def test_interval_strings():
    assert report.interval_str(conf_row("a", 10.43, 7.2, 13.1)) == "10.4 [7.2, 13.1]"
    assert report.interval_str(conf_row("a", 10.43, 7.2, None)) == "10.4 [7.2, ∞)"
    assert report.interval_str(conf_row("a", None, 12, None)) == "> 12 [12, ∞)"  # every seed trained
    assert report.interval_str(conf_row("a", None, None, 3)) == "< 3 (0, 3]"  # no seed trained
    assert report.interval_str({**conf_row("a"), "depths": []}) == "—"


def test_reference_verdict():
    v = report.reference_verdict
    assert v(84, 85.0, 90.0, step=3) == "inside"  # the reference k* is a last pass: k50 may lie up to 3 above
    assert v(84, 88.0, 90.0, step=3) == "below"   # this run trains deeper
    assert v(96, 85.0, 90.0, step=3) == "above"   # the reference trained deeper
    assert v(96, 85.0, None) == "inside" and v(3, None, 10.0) == "inside" and v(3, None, None) == "inside"
    assert v(447, 500.0, None, ref_hit_bound=True) == "inside"  # a bound-hit reference is only a lower limit
    assert v(447, 100.0, 200.0, ref_hit_bound=True) == "above"


def test_compare_reference_and_verdict_lines():
    conf = [conf_row("cnn_tanh", 7.5, 4.0, 9.0, k_star=6),
            conf_row("cnn_tanh", 4.0, 3.5, 5.0, k_star=3, protocol="original"),
            conf_row("resnet_nobn", 16.5, 15.2, 17.9, k_star=15),
            conf_row("cnn_tanh_newinit", None, 12, None, k_star=12, upper=12, hit_upper=True),
            conf_row("resnet", 620.0, 560.0, 700.0, k_star=600, upper=900),
            conf_row("resnet", 200.0, 150.0, 260.0, k_star=198, protocol="original"),
            conf_row("resnet_nobn_fixup", 40.0, 30.0, 50.0, k_star=39)]
    rows = report.compare_reference(conf)
    assert [r["verdict"] for r in rows] == ["inside", "inside", "below", "inside", "inside", "above", "no reference"]
    assert rows[0]["ref_k"] == 3 and rows[4]["ref_hit_bound"] and not rows[0]["ref_hit_bound"]
    assert "search stopped at k=12" in rows[3]["reason"]
    lines = report.verdict_lines(rows)
    assert len(lines) == 5 and lines[0].startswith("- cnn_tanh: protocol=correct: INSIDE")
    assert "protocol=original: INSIDE" in lines[0] and "coin flip" in lines[0]  # NOTES appended
    assert "OUTSIDE" in lines[1] and "this run trains deeper" in lines[1] and "diverged" in lines[1]
    res = next(x for x in lines if x.startswith("- resnet:"))
    assert "correct: INSIDE" in res and "original: OUTSIDE" in res
    assert "lower limit" in res and "upper bound (450)" in res  # the reference's own NOTE
    assert "NO REFERENCE" in lines[-1] and "not in the original study" in lines[-1]
    md = report.comparison_markdown(rows)
    assert md.splitlines()[0] == ("| variant | protocol | lr | seeds/probe | reference k* | this run's k* (majority) "
                                  "| k50 [95%] | reference inside? |")
    assert "| resnet | correct | 0.01 | 3 | 447 (bound hit) | 600 | 620 [560, 700] | inside |" in md
    assert "| resnet_nobn | correct | 0.01 | 3 | 12 | 15 | 16.5 [15.2, 17.9] | no: run deeper |" in md


def test_rank_variants_by_measured_limit():
    conf = [conf_row("cnn_tanh", 7.5, 4.0, 9.0, k_star=6),
            conf_row("cnn_elu", None, None, None, k_star=93),                    # no crossing: falls back to k*
            conf_row("resnet", None, 450, None, k_star=450, hit_upper=True),     # every seed trained
            conf_row("cnn_elu_bn", 450.0, 300.0, None, k_star=447),             # k50 ties with the k* above...
            conf_row("resnet_nobn", None, None, 3, k_star=None),               # no seed trained
            conf_row("cnn_tanh_newinit", 9.0, None, None, k_star=None),        # undetermined: ranked last
            conf_row("cnn_tanh_bn_oldinit", 7.5, 5.0, 9.0, k_star=6),
            conf_row("cnn_tanh", 3.5, 3.0, 4.0, k_star=3, protocol="original")]
    ranking = report.rank_variants(conf)
    correct = [(x["rank"], x["variant"]) for x in ranking if x["protocol"] == "correct"]
    assert correct == [(1, "resnet"), (2, "cnn_elu_bn"), (3, "cnn_elu"), (4, "cnn_tanh"), (4, "cnn_tanh_bn_oldinit"),
                       (6, "resnet_nobn"), (7, "cnn_tanh_newinit")]
    assert ranking[-1] == {**ranking[-1], "protocol": "original", "rank": 1, "variant": "cnn_tanh"}
    by = {x["variant"]: x for x in ranking if x["protocol"] == "correct"}
    assert by["resnet"]["limit_str"] == ">= 450" and by["resnet_nobn"]["limit_str"] == "< 3"
    assert by["cnn_elu"]["basis"] == "k*" and by["cnn_tanh_newinit"]["basis"] == "undetermined"


def test_mean_field_rows_beside_the_ranking():
    conf = [conf_row("cnn_tanh", 7.5, 4.0, 9.0, k_star=6),
            conf_row("cnn_tanh", 4.0, 3.5, 5.0, k_star=3, protocol="original"),
            conf_row("cnn_elu_bn", 200.0, 150.0, 260.0, k_star=198), conf_row("mystery", 9.0, 6.0, 12.0, k_star=9)]
    mf = report.mean_field_rows(conf)
    by = {m["variant"]: m for m in mf}
    assert set(by) == {"cnn_tanh", "cnn_elu_bn"}  # names the package does not know are left out
    assert by["cnn_tanh"]["applicable"] and by["cnn_tanh"]["k_measured"] == 6  # the correct protocol's k*
    assert not by["cnn_elu_bn"]["applicable"] and by["cnn_elu_bn"]["k_measured"] == 198
    md = report.ranking_markdown(report.rank_variants(conf), mf)
    assert "mean-field k* (6 xi)" in md.splitlines()[0]
    assert f"| {report._k(by['cnn_tanh']['k_pred'])} | applies: " in md
    assert "| n/a | not applicable: BatchNorm" in md and "no mean-field model for this variant" in md


def test_protocol_from_result_json_when_not_swept(tmp_path):
    d = fake_bisect_sweep(tmp_path / "sweep")
    doc = json.loads((d / "frontier.json").read_text())
    (d / "7").mkdir()
    (d / "7" / "result.json").write_text(json.dumps({"protocol": "original"}))
    for h in doc["history"]:
        h["job_dir"] = f"/elsewhere/{7 if h['combo'] == 1 else 8}"
    (d / "frontier.json").write_text(json.dumps(doc))
    assert [f["protocol"] for f in report.load_frontier(d)] == ["correct", "original"]


def test_job_folders_get_the_confidence_report(tmp_path):
    for i, (proto, k, errs) in enumerate([("correct", 3, [0.1, 0.12]), ("correct", 6, [0.15, 0.5]),
                                          ("original", 3, [0.9, 0.1])]):
        job = tmp_path / str(i)
        job.mkdir()
        trials = [{"seed": s, "train_err": [e], "test_err": [e], "trainable": e < 0.2} for s, e in enumerate(errs)]
        (job / "result.json").write_text(json.dumps({"model": "cnn_elu", "lr": 0.01, "k": k, "threshold": 0.2,
                                                     "protocol": proto, "trials": trials}))
    trials = report.load_sweep(tmp_path)
    conf = report.confidence_table(report.load_frontier(tmp_path, trials), trials)
    assert sorted((r["protocol"], r["seeds"], [d["passes"] for d in r["depths"]]) for r in conf) == \
        [("correct", 2, [2, 1]), ("original", 2, [1])]


def test_plot_fraction_trainable_and_limits(tmp_path):
    conf = [conf_row("cnn_tanh", 7.5, 4.0, 9.0, k_star=6), conf_row("resnet", None, 450, None, k_star=450),
            conf_row("mystery", None, None, 3), {**conf_row("empty"), "depths": []}]
    conf[0]["depths"] = [{"k": 3, "n": 3, "passes": 3, "fraction": 1.0, "low": 0.44, "high": 1.0, "diverged": 0},
                         {"k": 9, "n": 3, "passes": 1, "fraction": 1 / 3, "low": 0.06, "high": 0.79, "diverged": 0}]
    for path in (report.plot_fraction_trainable(conf, tmp_path),
                 report.plot_limits(report.compare_reference(conf), tmp_path)):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["depth_limits.png", "fraction_trainable.png"]
