"""The phase diagram: which sweeps count as a gain sweep, its rows against mean field, the figure
and the report section, from synthetic trials."""
import math

import pytest
from matplotlib.figure import Figure
from report_helpers import combination, frontier_row, history_row, trials, write_sweep

from deepdepth import report
from deepdepth.report import figures
from deepdepth.report.phase import HEAD, gain_sweep, phase_markdown, phase_rows, theory_curves
from deepdepth.report.render import render_report
from deepdepth.report.stats import INTERVAL

ORDERED = (0.25, 0.4, 0.55, 0.7, 0.8)
# per sigma_w^2: trained/seeds at the probed depths, crossing 50% deeper as sigma_w^2 nears 1
COUNTS = {0.25: {3: (3, 3), 6: (3, 3), 12: (1, 3), 24: (0, 3)},
          0.4: {3: (3, 3), 6: (3, 3), 12: (2, 3), 24: (0, 3)},
          0.55: {6: (3, 3), 12: (3, 3), 24: (1, 3), 48: (0, 3)},
          0.7: {12: (3, 3), 24: (2, 3), 36: (1, 3), 48: (0, 3)},
          0.8: {12: (3, 3), 24: (3, 3), 48: (3, 3)}}


def gain(s2: float) -> str:
    return f"fan_in:{math.sqrt(s2):.6g}"


def sweep(s2s=ORDERED, model="cnn_tanh_newinit", start=0, **params):
    """(combinations, trials): one combination per sigma_w^2, its trials from COUNTS (or all trained)."""
    combos, ts = [], []
    for i, s2 in enumerate(s2s, start):
        combos.append(combination(i, model, None, model__init=gain(s2), **params))
        ts += trials(i, COUNTS.get(s2, {3: (3, 3), 6: (3, 3)}))
    return combos, ts


def conf_of(*parts):
    return report.confidence_table([c for p in parts for c in p[0]], [t for p in parts for t in p[1]])


def test_a_gain_sweep_is_one_family_by_sigma_w2_with_its_own_mean_field():
    (name, points), = gain_sweep(conf_of(sweep(ORDERED[::-1]))).items()
    assert name == "cnn_tanh_newinit (tanh, fan_in:g)"
    assert [p.sigma_w2 for p in points] == pytest.approx(ORDERED, rel=1e-5)
    # tanh, sigma_b = 0, ordered: q* = 0 and chi_1 = sigma_w^2, so xi = -1/ln sigma_w^2
    assert [p.xi for p in points] == pytest.approx([-1 / math.log(s) for s in ORDERED], rel=1e-4)
    assert [round(p.xi, 2) for p in points] == [0.72, 1.09, 1.67, 2.80, 4.48]
    assert all(p.final.phase == "ordered" and p.gradient_scale is None for p in points)


def test_what_counts_as_a_gain_sweep():
    assert gain_sweep(conf_of(sweep((0.5,)))) == {}  # one gain
    naive = ([combination(1, "cnn_tanh_newinit", None, model__init="naive")], trials(1, {3: (3, 3)}))
    assert gain_sweep(conf_of(sweep((0.5,)), naive)) == {}  # naive's sigma_w^2 differs per stage: no axis
    one_each = conf_of(sweep((0.5,)), sweep((0.7,), model="cnn_elu", start=1))
    assert gain_sweep(one_each) == {}  # two networks, one gain each
    assert gain_sweep(conf_of(sweep((0.5, 0.7), model="resnet"))) == {}  # residual: no mean-field axis
    two = gain_sweep(conf_of(sweep((0.5, 0.7)), sweep((0.5, 0.7, 1.5), model="cnn_elu", start=2)))
    assert {k: len(v) for k, v in two.items()} == {"cnn_tanh_newinit (tanh, fan_in:g)": 2,
                                                   "cnn_elu (elu, fan_in:g)": 3}
    by_lr = gain_sweep(conf_of(sweep((0.5, 0.7), optim__lr="0.01"), sweep((0.5, 0.7), start=2, optim__lr="0.05")))
    assert sorted(by_lr) == ["cnn_tanh_newinit lr=0.01 (tanh, fan_in:g)", "cnn_tanh_newinit lr=0.05 (tanh, fan_in:g)"]


def test_rows_against_6_xi():
    (points,) = gain_sweep(conf_of(sweep(ORDERED + (1.0, 1.5)))).values()
    rows = phase_rows(points)
    assert all(len(r) == len(HEAD) for r in rows)
    cells = {r[0]: dict(zip(HEAD, r)) for r in rows}
    first = cells["0.25"]
    assert (first["init"], first["phase"], first["xi (layers)"], first["6 xi"]) == ("fan_in:0.5", "ordered",
                                                                                  "0.721", "4.33")
    # the package's net: the input conv maps nothing, so one layer more than 6 xi for a uniform fan-in net
    assert first["mean-field k (decay <= 6 e-folds)"] == "5.33"
    lim = points[0].row.limit
    assert lim.kind == "k50" and first[f"measured k50 [{INTERVAL}]"] == str(lim)
    six = 6 / math.log(4)
    assert first["k50 / 6 xi"] == f"{lim.value / six:.2g} [{lim.low / six:.2g}, {lim.high / six:.2g}]"
    assert cells["0.8"][f"measured k50 [{INTERVAL}]"] == "> 48 (lower bound)" and cells["0.8"]["k50 / 6 xi"] == \
        f"> {48 / (-6 / math.log(0.8)):.2g}"
    assert (cells["1"]["phase"], cells["1"]["6 xi"], cells["1"]["k50 / 6 xi"]) == ("critical", "∞", "—")
    chaotic = cells["1.5"]
    assert chaotic["phase"] == "chaotic" and chaotic["6/ln chi_1 (gradient growth)"] != "—"
    text = phase_markdown({"tanh": points})
    assert text.startswith("**tanh** (3 seeds per probe)") and "| sigma_w^2 | init | phase |" in text
    uneven = ([combination(0, "cnn_tanh_newinit", None, model__init=gain(0.5))], trials(0, {3: (2, 2), 6: (1, 3)}))
    (points,) = gain_sweep(conf_of(uneven, sweep((0.7,), start=1))).values()
    assert phase_markdown({"tanh": points}).startswith("**tanh** (2 to 3 seeds per probe)")


def test_theory_curves_diverge_at_criticality():
    six_xi, gradient = theory_curves("tanh", [0.25, 0.9, 1.0, 1.5])
    assert six_xi[0] == pytest.approx(-6 / math.log(0.25)) and six_xi[1] > 50 and six_xi[2] == math.inf
    assert math.isnan(gradient[0]) and math.isnan(gradient[2]) and 0 < gradient[3] < six_xi[3]


def test_heat_map_cells_meet_halfway_and_leave_an_unprobed_stretch_empty():
    from deepdepth.report.axes import cell_edges
    assert cell_edges([3, 6, 12]) == [(1.5, 4.5), (4.5, 9), (9, 15)]
    near = cell_edges([0.7, 0.8], log=True)
    assert near[0][1] == pytest.approx(near[1][0]) == pytest.approx(math.sqrt(0.7 * 0.8))
    far = cell_edges([0.8, 2, 3], log=True)  # nothing probed between 0.8 and 2
    assert far[0] == pytest.approx((0.8 / 1.25, 1.0)) and far[1][0] == pytest.approx(2 / 1.25)
    assert far[1][1] == pytest.approx(far[2][0]) == pytest.approx(math.sqrt(6))


def test_the_figure_is_drawn_only_for_a_gain_sweep_and_saved(tmp_path):
    drawn = dict(figures.all_figures(conf_of(sweep(ORDERED + (1.25,)))))
    fig = drawn["phase_diagram"]
    assert isinstance(fig, Figure) and set(drawn) >= set(figures.FIGURES)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and all(t.get_text().isdigit() for t in ax.get_yticklabels())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.25", "0.4", "0.55", "0.7", "0.8", "1.25"]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any(t.startswith("6 ξ") for t in legend) and any("χ₁" in t for t in legend)
    assert any("k50" in t for t in legend)
    fig.savefig(tmp_path / "phase.png", dpi=60)
    assert (tmp_path / "phase.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    not_swept = dict(figures.all_figures(conf_of(sweep((0.5,)), sweep((0.7,), model="cnn_elu", start=1))))
    assert "phase_diagram" not in not_swept and set(not_swept) >= set(figures.FIGURES)


def test_report_section_only_for_a_gain_sweep():
    combos, ts = sweep()
    text = render_report(combos, ts)
    section = text[text.index("## Phase diagram"):]
    assert "| sigma_w^2 | init | phase | xi (layers) | 6 xi |" in section and "| 0.25 | fan_in:0.5 | ordered" in section
    assert "## Phase diagram" not in render_report(combos, ts, mean_field=False)
    assert "## Phase diagram" not in render_report(*sweep((0.5,)))


def test_cli_on_a_gain_sweep_dir(tmp_path, capsys):
    history, frontier = [], []
    for i, s2 in enumerate(ORDERED):
        history += [history_row(i, k, s, s < passes) for k, (passes, n) in COUNTS[s2].items() for s in range(n)]
        frontier.append(frontier_row(i, "cnn_tanh_newinit", None, 48, params={"model.init": gain(s2)}))
    d = write_sweep(tmp_path / "sweep", frontier, history)
    report.main([str(d)])
    out = capsys.readouterr().out
    assert "![phase_diagram](phase_diagram.png)" in out[out.index("## Phase diagram"):out.index("## Figures")]
    assert (d / "phase_diagram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def width_sweep_dir(tmp_path):
    """sigma_w^2 0.55 and 0.7 at the study's widths (no override) and halved; more layers train wider."""
    rows, history = [], []
    for i, (s2, widths) in enumerate([(0.55, None), (0.7, None), (0.55, "[2,4,8]"), (0.7, "[2,4,8]")]):
        params = {"model.init": gain(s2), **({"model.widths": widths} if widths else {})}
        rows.append(frontier_row(i, "cnn_tanh_newinit", 12, 48, params=params))
        shift = 1 if widths is None else 0.5  # the narrow networks' limit is half as deep
        for k in (6, 12, 24, 48):
            for s in range(3):
                history.append(history_row(i, k, s, k * (1 + 0.1 * s) <= COUNTS_LIMIT[s2] * shift * 1.2))
    return write_sweep(tmp_path / "widths", rows, history)


COUNTS_LIMIT = {0.55: 20, 0.7: 30}


def test_a_width_sweep_gets_its_table_and_figure_beside_the_phase_diagram(tmp_path):
    d = width_sweep_dir(tmp_path)
    trials_ = report.load_sweep(d)
    frontier = report.load_frontier(d, trials_)
    assert [c.settings["model.widths"] for c in frontier] == ["[4,8,16]", "[4,8,16]", "[2,4,8]", "[2,4,8]"]
    sweep = figures.width_sweep(report.confidence_table(frontier, trials_))
    assert [[figures.widths_of(p) for p in ps] for ps in sweep.values()] == [[(2, 4, 8), (4, 8, 16)]] * 2
    assert list(sweep) == pytest.approx([0.55, 0.7], rel=1e-5)
    assert all(len({round(p.six_xi, 6) for p in ps}) == 1 for ps in sweep.values())  # mean field ignores width
    text = render_report(frontier, trials_, figures=[])
    section = text.split("### Width", 1)[1]
    assert "| 0.55 | [2,4,8] |" in section and "| 0.7 | [4,8,16] |" in section and "k50 / 6 xi" in section
    names = [stem for stem, _ in figures.all_figures(report.confidence_table(frontier, trials_))]
    assert "depth_scale_vs_width" in names and "limit_vs_model.widths" in names
