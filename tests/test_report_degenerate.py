"""Degenerate sweeps the report must survive: one depth, nothing trainable, everything trainable,
one seed, one combination, init-gain sweeps with one gain, one depth per gain or every gain
failing at its first probe, no trial with a verdict. The directories are written by the sweep
loop itself (a backend that trains from an oracle and writes each job's result.json, as a
trial does) or, for a plain multirun, as job folders of result.json files."""
import json

import pytest

from deepdepth import report
from deepdepth.report.figures import all_figures
from deepdepth.report.stats import confidence_table
from deepdepth.search import DepthSearch, GallopSearch
from deepdepth.sweep import Combo, Composed, CostModel, Options, Outcome, Sweep

PNG = b"\x89PNG\r\n\x1a\n"


class OracleBackend:
    """Trains seeds below ``passes(combo, k)`` at depth k (None: the job crashes; -1: it stops
    before its last epoch, no verdict); writes each job's result.json in its own folder of the
    sweep dir, as ``deepdepth.train`` does."""

    def __init__(self, sweep_dir, passes):
        self.sweep_dir, self.passes, self.parallelism = sweep_dir, passes, 1

    def compose(self, overrides):
        return None

    def launch(self, jobs, start):
        out = []
        for num, job in enumerate(jobs, start):
            job_dir = self.sweep_dir / str(num)
            job_dir.mkdir(parents=True)
            trials = []
            for ci, k, s in job.replicas:
                n = self.passes(ci, k)
                if n is None:
                    break
                ok = s < n if n >= 0 else None
                trials.append({"k": k, "seed": s, "trainable": ok, "diverged": False,
                               "train_err": [0.3, 0.02 if ok else 0.89], "test_err": [0.3, 0.03 if ok else 0.9]})
            if len(trials) < len(job.replicas):
                out.append(Outcome(error="RuntimeError: boom", job_dir=str(job_dir)))
                continue
            result = {"model": "cnn_tanh", "k": job.k, "lr": 0.01, "epochs": 2, "criterion": "test",
                      "threshold": 0.2, "protocol": "correct", "seeds": job.seeds, "train_samples": 512,
                      "test_samples": 256, "trials": trials, "complete": True, "debug": False, "seconds": 1.5,
                      "device": "cpu", "device_name": "cpu", "flush_denormal": True}
            (job_dir / "result.json").write_text(json.dumps(result))
            out.append(Outcome(result=result, job_dir=str(job_dir)))
        return out


def combos(models_inits, search):
    out = []
    for i, (model, init) in enumerate(models_inits):
        overrides = [f"model={model}"] + ([f"model.init={init.replace(':', chr(92) + ':')}"] if init else [])
        out.append(Combo(i, overrides, search(), Composed(model=model, lr=0.01, norm=False, steps=10,
                                                          train_steps=10, init=init)))
    return out


def run_sweep(d, models_inits, search, passes):
    d.mkdir(parents=True)
    sweep = Sweep(d, combos(models_inits, search), OracleBackend(d, passes), CostModel("cpu"),
                  Options(retries=0, pack_inits=False), header={"upper": 24})
    sweep.run()
    return d


GAINS = [("cnn_tanh_newinit", "fan_in:0.5"), ("cnn_tanh_newinit", "fan_in:0.85")]
TANH = [("cnn_tanh", None)]
gallop = lambda upper=24, seeds=3: (lambda: GallopSearch(upper=upper, seeds=seeds, parallel=2))  # noqa: E731

SWEEPS = {  # name -> (combinations, search, passes(combo, k) -> seeds trained of 3)
    "one depth": (TANH, gallop(upper=3), lambda ci, k: 3),
    "nothing trainable": (TANH, gallop(), lambda ci, k: 0),
    "everything trainable": (TANH, gallop(), lambda ci, k: 3),
    "one seed": (TANH, gallop(seeds=1), lambda ci, k: 1 if k <= 9 else 0),
    "one combination, bisection": (TANH, lambda: DepthSearch(upper=12, seeds=1), lambda ci, k: 1 if k <= 6 else 0),
    "no trial with a verdict": (TANH, gallop(), lambda ci, k: None),
    "gain sweep, one depth per gain": (GAINS, gallop(upper=3, seeds=1), lambda ci, k: 1),
    "gain sweep, every gain fails at its first probe": (GAINS, gallop(), lambda ci, k: 0),
    "gain sweep, one gain": (GAINS[:1] + TANH, gallop(), lambda ci, k: 3 if k <= 6 else 0),
    "gain sweep, one gain crashed": (GAINS, gallop(), lambda ci, k: None if ci == 0 else 3 * (k <= 6)),
    "gain sweep, one gain without a verdict": (GAINS, gallop(), lambda ci, k: -1 if ci == 0 else 3 * (k <= 6)),
}


def plain_multirun(d, trials_per_job):
    """Job folders of ``python -m deepdepth.train -m``: one result.json per job."""
    for num, (k, trials) in enumerate(trials_per_job):
        (d / str(num)).mkdir(parents=True)
        result = {"model": "cnn_tanh", "k": k, "lr": 0.01, "epochs": 1, "criterion": "test", "threshold": 0.2,
                  "protocol": "correct", "train_samples": 512, "test_samples": 256, "trials": trials,
                  "seconds": 2.0, "device": "cpu", "flush_denormal": True}
        (d / str(num) / "result.json").write_text(json.dumps(result))
    return d


MULTIRUNS = {
    "multirun, one trial": [(3, [{"k": 3, "seed": 0, "trainable": True, "test_err": [0.05], "train_err": [0.04]}])],
    "multirun, a debug run (no verdict)": [(3, [{"k": 3, "seed": 0, "trainable": None, "test_err": [],
                                                 "train_err": []}])],
    "multirun, one depth failing": [(6, [{"k": 6, "seed": s, "trainable": False, "test_err": [0.9],
                                          "train_err": [0.89]} for s in range(2)])],
}


def degenerate_dir(tmp_path, name):
    d = tmp_path / "sweep"
    if name in MULTIRUNS:
        return plain_multirun(d, MULTIRUNS[name])
    models_inits, search, passes = SWEEPS[name]
    return run_sweep(d, models_inits, search, passes)


CASES = sorted(SWEEPS) + sorted(MULTIRUNS)


@pytest.mark.parametrize("name", CASES)
def test_every_degenerate_sweep_gives_a_report_and_its_figures(tmp_path, capsys, name):
    d = degenerate_dir(tmp_path, name)
    report.main([str(d)])
    out = capsys.readouterr().out
    assert out.startswith("# Depth study: sweep") and "## Study table" in out and "## Figures" in out
    assert (d / "report.md").read_text() == out
    pngs = sorted(d.glob("*.png"))
    assert all(p.read_bytes()[:8] == PNG for p in pngs)
    for p in pngs:  # every figure written is linked from the report
        assert f"({p.name})" in out


@pytest.mark.parametrize("name", CASES)
def test_the_python_functions_behind_the_cli_survive_too(tmp_path, name):
    d = degenerate_dir(tmp_path, name)
    trials = report.load_sweep(d)
    frontier = report.load_frontier(d, trials)
    drawn = report.write_figures(frontier, trials, tmp_path)
    text = report.render_report(frontier, trials, figures=drawn)
    assert text.startswith("# Depth study") and "## Ranking by measured depth limit" in text
    for stem, fig in all_figures(confidence_table(frontier, trials)):  # a depth label stands at that depth
        for ax in fig.axes:
            for axis in [a for a, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())) if scale == "log"]:
                ticks = axis.get_majorticklocs()
                assert len(ticks) and all(t == round(t) for t in ticks), (stem, ticks)


def test_the_reported_crash_one_depth_per_gain_draws_a_phase_diagram(tmp_path, capsys):
    d = degenerate_dir(tmp_path, "gain sweep, one depth per gain")
    rows = report.load_sweep(d)
    assert {t.k for t in rows} == {3} and len({t.combo for t in rows}) == 2  # each gain probed one depth
    report.main([str(d)])
    out = capsys.readouterr().out
    assert (d / "phase_diagram.png").read_bytes()[:8] == PNG and "![phase_diagram](phase_diagram.png)" in out


def test_figures_with_nothing_to_show_say_so_instead_of_drawing(tmp_path, capsys):
    d = degenerate_dir(tmp_path, "no trial with a verdict")
    report.main([str(d)])
    out = capsys.readouterr().out
    assert not list(d.glob("*.png"))
    figures = out[out.index("## Figures"):]
    for stem in ("fraction_trainable", "depth_limits", "error_vs_depth"):
        assert f"- {stem}: not drawn, no trial has a verdict" in figures
    assert "- error_vs_depth_cnn_tanh_lr=0.01: not drawn, no trial has a verdict" in figures


def test_a_gain_sweep_with_one_gain_left_names_the_phase_diagram_it_did_not_draw(tmp_path, capsys):
    d = degenerate_dir(tmp_path, "gain sweep, one gain without a verdict")
    report.main([str(d)])
    out = capsys.readouterr().out
    assert not (d / "phase_diagram.png").exists()
    assert "- phase_diagram: not drawn, fewer than two init gains have a trial with a verdict" in out
    assert "## Phase diagram" in out  # its table still lists both gains


def test_every_gain_failing_at_its_first_probe_is_drawn_as_bounds(tmp_path):
    d = degenerate_dir(tmp_path, "gain sweep, every gain fails at its first probe")
    trials = report.load_sweep(d)
    conf = confidence_table(report.load_frontier(d, trials), trials)
    assert min(t.k for t in trials) == 3 and not any(t.trainable for t in trials)
    assert "phase_diagram" in dict(all_figures(conf))
