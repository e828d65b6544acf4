"""deepdepth.report stats and compare: honest limits, the reference read right, like compared with like."""
import pytest
from report_helpers import combination, confidence, trials

from deepdepth.science import reference as ref
from deepdepth import report
from deepdepth.science.confidence import half_trainable_depth
from deepdepth.report.compare import NO_SETTINGS, like_for_like_lines, verdict_lines
from deepdepth.report.render import comparison_markdown, ranking_markdown, render_report
from deepdepth.report.stats import measured_limit
from deepdepth.report.theory import mean_field_rows

DELTAORTH = {48: (3, 3), 72: (3, 3), 84: (2, 3), 90: (2, 3), 93: (2, 3), 96: (2, 3), 99: (3, 3)}


def test_depth_points_and_wilson_intervals():
    row = confidence("resnet", {12: (2, 3), 15: (3, 3), 18: (1, 2)})
    k12 = row.depths[0]
    assert (k12.k, k12.n, k12.passes, k12.majority) == (12, 3, 2, True) and k12.test_err == 0.05
    from deepdepth.science.confidence import wilson

    assert k12.interval == pytest.approx(wilson(2, 3))
    assert row.trials == 8 and row.crashed == 0


def test_k50_where_the_probes_cross_half():
    row = confidence("cnn_tanh", {3: (3, 3), 6: (1, 3), 12: (0, 3)}, k_star=3)
    expect = half_trainable_depth([3] * 3 + [6] * 3 + [12] * 3, [1, 1, 1, 1, 0, 0, 0, 0, 0])
    assert (row.limit.kind, row.limit.value, row.limit.low, row.limit.high) == ("k50", expect.k50, expect.low,
                                                                                expect.high)
    assert str(row.limit) == "6.0 [1.9, 11.4]" and row.limit.slope > 0 and row.limit.bracket is None


def test_a_separated_pair_is_a_bracket_not_a_point():
    """All trained at 15, none at 18, nothing between: the limit prints as the bracket (no k50),
    its interval at least the two depths, exactly them when enough seeds agree on each side."""
    row = confidence("resnet_nobn", {9: (3, 3), 15: (3, 3), 18: (0, 3), 24: (0, 3)}, k_star=15)
    lim = row.limit
    assert lim.kind == "k50" and lim.bracket == (15, 18) and str(lim).startswith("15–18 (bracket) [")
    assert lim.low <= 15 and lim.high >= 18 and 15 < lim.value < 18
    sure = confidence("resnet_nobn", {15: (8, 8), 18: (0, 8)}, k_star=15).limit
    assert str(sure) == "15–18 (bracket) [15, 18]"


def test_no_extrapolated_limit():
    """Correction 3: no probe below 50% -> '> deepest majority probe (lower bound)', not '120 [93.4, inf)'."""
    fit = half_trainable_depth(*zip(*[(t.k, t.trainable) for t in trials(0, DELTAORTH)]))
    assert fit.k50 > 99  # what the old report printed
    row = confidence("cnn_tanh_deltaorth", DELTAORTH, k_star=96)
    assert str(row.limit) == "> 99 (lower bound)" and row.limit.bounds == (99, None)
    every = confidence("resnet_nobn_skipinit", {18: (3, 3), 36: (3, 3), 39: (3, 3)}, k_star=36)
    assert str(every.limit) == "> 39 (lower bound)"
    assert str(confidence("x", {3: (0, 3), 6: (0, 3)}).limit) == "< 3 (upper bound)"
    assert str(measured_limit([])) == "—"


def test_censored_k_star_is_the_deepest_trained_probe():
    c = combination(0, "resnet_nobn_skipinit", k_star=36)
    c.censored = True
    (row,) = report.confidence_table([c], trials(0, {33: (3, 3), 36: (3, 3), 39: (3, 3)}))
    assert row.k_star_str == "≥ 39 (censored)"


def test_reference_data_resnet_is_bracketed():
    """Correction 1: the probe at 450 ran and failed, so 447 is bracketed, not censored."""
    resnet = ref.REFERENCE["resnet"]
    assert (resnet.bound, resnet.k_star, resnet.failed, resnet.censored) == (450, 447, 450, False)
    assert all(r.failed == r.k_star + ref.STEP and not r.censored for r in ref.REFERENCE.values())


def test_reference_verdict_two_sided_unless_censored():
    v = report.reference_verdict
    assert v(84, 85.0, 90.0) == "inside"  # the reference k* is a last pass: k50 may lie up to 3 above
    assert v(84, 88.0, 90.0) == "below" and v(96, 85.0, 90.0) == "above"
    assert v(96, 85.0, None) == "inside" and v(3, None, 10.0) == "inside"
    assert v(447, 500.0, None) == "below"  # two-sided: a run that trains deeper is outside
    assert v(447, 500.0, None, censored=True) == "inside" and v(447, 100.0, 200.0, censored=True) == "above"


def test_resnet_deeper_than_the_reference_is_outside():
    deeper = confidence("resnet", {450: (3, 3), 600: (3, 3), 750: (0, 3)}, k_star=600, protocol="original")
    (c,) = report.compare_reference([deeper])
    assert c.verdict == "below" and "this run trains deeper" in c.reason and "450 failed" in c.reason


def test_notes_are_attributed_and_this_sweeps_data_computed():
    """Correction 2: re-run notes are said to be earlier re-runs; this sweep's own counts beside them."""
    tanh = confidence("cnn_tanh", {3: (3, 3), 6: (1, 3), 12: (0, 3)}, k_star=3)
    (line,) = verdict_lines(report.compare_reference([tanh]))
    assert "this sweep: k=3 trained 3/3, k=6 trained 1/3" in line
    assert "Earlier re-runs of the original protocol (reported beside the original study's figures, CPU, 3 seeds; not this sweep)" in line
    assert all("re-run" not in r.note or "not this sweep" in r.note for r in ref.REFERENCE.values())


def test_other_settings_get_no_reference():
    """Correction 5/8: a 1-epoch, 1,024-image sweep at lr 0.05 is not 'reference deeper'."""
    small = confidence("cnn_tanh", {3: (0, 1), 6: (0, 1)}, optim__lr="0.05", trainer__max_epochs="1",
                       data__train_samples="1024")
    gain = confidence("cnn_tanh_newinit", {3: (1, 1), 6: (0, 1)}, model__init="fan_in:0.7")
    full = confidence("cnn_tanh", {3: (1, 1), 6: (0, 1)}, data__train_samples="60000", model__init="naive")
    small_c, gain_c, full_c = report.compare_reference([small, gain, full])
    assert small_c.verdict == NO_SETTINGS and "lr=0.05 (reference 0.01)" in small_c.reason
    assert "epochs=1 (reference 3)" in small_c.reason and "train_samples=1024" in small_c.reason
    assert gain_c.verdict == NO_SETTINGS and "model.init=fan_in:0.7" in gain_c.reason
    assert full_c.verdict == "inside"  # the full set and the variant's own init are the reference's
    assert NO_SETTINGS in comparison_markdown([small_c])


def test_protocol_caveat_only_where_batchnorm_makes_it_matter():
    bn = confidence("cnn_elu_bn", {150: (3, 3), 159: (0, 3)}, k_star=150)
    bn_original = confidence("cnn_elu_bn", {150: (3, 3), 159: (0, 3)}, k_star=150, protocol="original")
    plain = confidence("cnn_elu", {90: (3, 3), 96: (0, 3)}, k_star=90)
    a, b, c = report.compare_reference([bn, bn_original, plain])
    assert "protocol=original" in a.caveat and a.cell.endswith("(other protocol)")
    assert b.caveat == "" and c.caveat == ""


def test_ranking_uses_lower_bounds_and_ranks_the_like_for_like_baseline():
    """Corrections 3 and 4: '> 99' ranks by its bound; cnn_tanh_newinit sits beside delta-orthogonal."""
    conf = report.confidence_table(
        [combination(0, "cnn_tanh_deltaorth", 96), combination(1, "cnn_tanh_newinit", 84),
         combination(2, "cnn_tanh", 3), combination(3, "cnn_tanh", 3, protocol="original")],
        trials(0, DELTAORTH) + trials(1, {84: (3, 3), 96: (1, 3), 120: (0, 3)})
        + trials(2, {3: (3, 3), 6: (1, 3), 12: (0, 3)}) + trials(3, {3: (2, 3), 6: (0, 3)}))
    ranking = report.rank_variants(conf)
    correct = [(x.rank, x.row.variant, x.shown) for x in ranking if x.group[0] == "correct"]
    assert [c[:2] for c in correct] == [(1, "cnn_tanh_deltaorth"), (2, "cnn_tanh_newinit"), (3, "cnn_tanh")]
    assert correct[0][2] == "> 99 (lower bound)" and ranking[-1].group[0] == "original" and ranking[-1].rank == 1
    lines = like_for_like_lines(conf)
    assert len(lines) == 1 and "cnn_tanh_newinit" in lines[0] and "> 99 (lower bound)" in lines[0]
    alone = like_for_like_lines([conf[0]])
    assert "not in this sweep" in alone[0] and "84" in alone[0]


def test_every_varying_setting_is_a_column_with_its_own_mean_field():
    """A sweep over model.init gains shows the gain per row and its own prediction."""
    combos = [combination(i, "cnn_tanh_newinit", model__init=f"fan_in:{g}") for i, g in enumerate((0.5, 1.0))]
    for c in combos:
        c.label = f"cnn_tanh_newinit model.init={c.settings['model.init']}"
    conf = report.confidence_table(combos, trials(0, {3: (3, 3), 6: (0, 3)}) + trials(1, {3: (3, 3), 6: (3, 3)}))
    mf = mean_field_rows(conf)
    assert mf[0]["k_pred"] < 30 and mf[1]["k_pred"] == float("inf")  # ordered at gain 0.5, critical at 1
    md = ranking_markdown(report.rank_variants(conf), mf)
    assert md.splitlines()[0].startswith("| protocol | lr | rank | variant | model.init | measured limit |")
    assert "| fan_in:0.5 |" in md and "| fan_in:1.0 |" in md
    text = render_report(combos, trials(0, {3: (3, 3), 6: (0, 3)}) + trials(1, {3: (3, 3)}), mean_field=False)
    assert "| variant | model.init | k* |" in text and "Settings of every combination: lr=0.01" in text
