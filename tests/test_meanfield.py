"""Mean-field quantities against closed forms."""
import math

import numpy as np
import pytest

from deepdepth import meanfield as mf
from deepdepth.models import VARIANTS


def Phi(x):
    return 0.5 * math.erfc(-x / math.sqrt(2))


@pytest.mark.parametrize("q", [1e-4, 0.5, 2.0, 30.0])
def test_elu_gaussian_integrals_match_closed_forms(q):
    # x ~ N(0, q): E[e^{ax} 1{x<0}] = e^{a^2 q / 2} Phi(-a sqrt(q))
    second_moment = q / 2 + math.exp(2 * q) * Phi(-2 * math.sqrt(q)) - 2 * math.exp(q / 2) * Phi(-math.sqrt(q)) + 0.5
    dphi2 = 0.5 + math.exp(2 * q) * Phi(-2 * math.sqrt(q))
    assert mf.variance_map(q, "elu", 1.0) == pytest.approx(second_moment, rel=1e-9)
    assert mf.chi_1("elu", 1.0, q) == pytest.approx(dphi2, rel=1e-9)


@pytest.mark.parametrize("c", [-0.9, 0.0, 0.5, 0.99])
def test_two_point_integrals_match_the_arc_cosine_kernel(c):
    relu, step = mf.ACTIVATIONS["relu"]
    s = math.sqrt(1 - c * c)
    assert mf.gauss2(relu, relu, 2.0, c) == pytest.approx(2.0 / (2 * math.pi) * (s + (math.pi - math.acos(c)) * c), rel=1e-9)
    assert mf.gauss2(step, step, 2.0, c) == pytest.approx((math.pi - math.acos(c)) / (2 * math.pi), rel=1e-9)


@pytest.mark.parametrize("activation", ["tanh", "elu", "linear"])
@pytest.mark.parametrize("sigma_w2", [0.09, 0.5, 0.9])
def test_below_criticality_q_star_is_zero_and_chi_1_is_sigma_w2(activation, sigma_w2):
    st = mf.stage(activation, sigma_w2)
    assert st.q_star == 0.0 and st.phase == "ordered"
    assert st.chi_1 == pytest.approx(sigma_w2, rel=1e-9)  # phi'(0) = 1
    assert st.xi == pytest.approx(-1 / math.log(sigma_w2), rel=1e-9)


def test_relu_is_critical_at_he_init():
    assert mf.stage("relu", 1.0).chi_1 == pytest.approx(0.5)
    assert mf.stage("relu", 2.0).phase == "critical"


@pytest.mark.parametrize("activation", ["tanh", "elu"])
def test_sigma_w_one_zero_bias_is_critical(activation):
    st = mf.stage(activation, 1.0)
    assert st.q_star == 0.0 and st.phase == "critical" and st.xi == math.inf


def test_tanh_above_criticality_is_chaotic_and_q_star_is_the_iteration_limit():
    q = 1.0
    for _ in range(2000):
        q = mf.variance_map(q, "tanh", 2.0)
    st = mf.stage("tanh", 2.0)
    assert st.q_star == pytest.approx(q, rel=1e-8) and st.q_star > 0
    assert st.chi_1 > 1 and st.phase == "chaotic"
    assert st.c_star == pytest.approx(0.0, abs=1e-8)  # odd phi, zero bias: uncorrelated inputs stay so
    chi_c = 2.0 * mf.gauss(lambda x: 1 - np.tanh(x) ** 2, st.q_star) ** 2  # E[phi'(u1) phi'(u2)] at c = 0
    assert st.xi == pytest.approx(-1 / math.log(chi_c), rel=1e-6)


def test_linear_above_criticality_explodes():
    st = mf.stage("linear", 1.5)
    assert st.q_star == math.inf and st.phase == "chaotic" and st.xi == pytest.approx(1 / math.log(1.5))


def test_variant_predictions():
    naive = mf.predict_variant("cnn_tanh", VARIANTS["cnn_tanh"])
    # sigma = 0.05: sigma_w^2 = 9 * C * 0.0025 for the stage widths C = 4, 8, 16
    assert [s.sigma_w2 for s in naive.stages] == pytest.approx([0.09, 0.18, 0.36])
    assert naive.width_change_sigma_w2 == pytest.approx([0.0225, 0.09, 0.18])  # 9 c_in 0.05^2: 1->4, 4->8, 8->16
    # k=3: the 4->8 conv (0.09) and the 8->16 conv (0.18) map; the first conv sees the image linearly
    assert naive.decay(3) == pytest.approx(-math.log(0.09 * 0.18))
    assert naive.decay(6) == pytest.approx(-math.log(0.09 * 0.09 * 0.18 * 0.18 * 0.36))
    assert naive.decay(naive.k_pred) == pytest.approx(6.0) and naive.k_star_pred == 3
    for name in ("cnn_tanh_newinit", "cnn_elu", "cnn_tanh_deltaorth"):
        p = mf.predict_variant(name, VARIANTS[name])
        assert p.applicable and p.k_pred == math.inf and {s.phase for s in p.stages} == {"critical"}
    reasons = {name: mf.predict_variant(name, VARIANTS[name]) for name in
               ("cnn_elu_bn", "resnet", "resnet_nobn", "resnet_nobn_skipinit", "resnet_nobn_fixup")}
    assert not any(p.applicable for p in reasons.values())
    assert reasons["resnet"].reason.startswith("BatchNorm") and reasons["resnet_nobn"].reason.startswith("residual")
    assert "identity" in reasons["resnet_nobn_skipinit"].reason and "L^-1/2" in reasons["resnet_nobn_fixup"].reason
    gained = mf.predict("tanh", "delta_orthogonal:0.9")
    assert [s.chi_1 for s in gained.stages] == pytest.approx([0.81] * 3)


def test_table_rows_and_markdown():
    rows = mf.mean_field_table(measured={"cnn_tanh": 3})
    assert [r["variant"] for r in rows] == list(VARIANTS)
    by = {r["variant"]: r for r in rows}
    assert by["cnn_tanh"]["k_pred"] == 3 and by["cnn_tanh"]["k_measured"] == 3
    assert by["resnet"]["note"].startswith("not applicable")
    assert "dynamical isometry" in by["cnn_tanh_deltaorth"]["note"]
    assert "isometry" not in by["cnn_tanh_newinit"]["note"]  # same chi_1, Gaussian kernels
    md = mf.mean_field_markdown(rows)
    assert md.count("\n") == len(rows) + 2 and "| cnn_tanh | 0.09 / 0.18 / 0.36 |" in md


def layer_by_layer_decay(init: str, k: int) -> float:
    """-sum ln chi over convs 2..k of the real DepthNet(k), each at its own sigma_w^2 = 9 c_in sigma^2
    (ordered phase, q* = 0: chi = sigma_w^2 for tanh)."""
    from deepdepth.models import DepthNet, conv_layers
    from deepdepth.models.init import conv_sigma
    convs = conv_layers(DepthNet(k, activation="tanh", init=init, seeds=0))
    return -sum(math.log(9 * c.in_channels * conv_sigma(init, c.in_channels, c.out_channels) ** 2) for c in convs[1:])


@pytest.mark.parametrize("init", ["naive", "fan_out:0.8", "fan_in:0.6"])
@pytest.mark.parametrize("k", [3, 6, 12])
def test_decay_counts_every_conv_with_its_own_variance(init, k):
    """The width-changing convs (1->4, 4->8, 8->16) enter with their own weight variance."""
    p = mf.predict("tanh", init)
    assert {s.phase for s in p.stages} == {"ordered"}
    assert p.decay(k) == pytest.approx(layer_by_layer_decay(init, k), rel=1e-9)


def test_width_changing_convs_move_the_prediction():
    """fan_out: sigma_w^2 = c_in / c_out (x gain^2) on the width-changing convs, a 2x weaker step
    into stages 2 and 3 than the repeated convs: a limit the per-stage picture would not see."""
    p = mf.predict("tanh", "fan_out:0.9")
    assert [s.sigma_w2 for s in p.stages] == pytest.approx([0.81] * 3)
    assert p.width_change_sigma_w2 == pytest.approx([0.81 / 4, 0.81 / 2, 0.81 / 2])
    assert p.offset == pytest.approx(math.log(0.81) + 2 * math.log(2))
    assert p.k_pred == pytest.approx(3 * (6 - p.offset) / (-3 * math.log(0.81)))
    critical = mf.predict("tanh", "delta_orthogonal")  # critical stages, finite width steps: still no limit
    assert critical.k_pred == math.inf and critical.offset == pytest.approx(2 * math.log(2))


def test_tanh_just_past_criticality_converges_instead_of_stopping_early():
    """sigma_w^2 = 1.05: the correlation map crawls (c = 0.957 after 2,000 iterations from 0.99);
    the bracketed root is c* = 0 and xi is finite, about 2,700 layers."""
    st = mf.stage("tanh", 1.05)
    assert st.phase == "chaotic" and st.c_star == pytest.approx(0.0, abs=1e-9)
    chi_c = 1.05 * mf.gauss(lambda x: 1 - np.tanh(x) ** 2, st.q_star) ** 2
    assert st.xi == pytest.approx(-1 / math.log(chi_c), rel=1e-6) and 2000 < st.xi < 3500


def test_correlation_fixed_point_is_a_fixed_point_of_the_map():
    st = mf.stage("elu", 1.5)  # ELU is not odd: c* is strictly between 0 and 1
    phi = mf.ACTIVATIONS["elu"][0]
    assert 0 < st.c_star < 1
    assert 1.5 * mf.gauss2(phi, phi, st.q_star, st.c_star) / st.q_star == pytest.approx(st.c_star, abs=1e-9)
    c = 0.99
    for _ in range(3000):  # xi ~ 37 layers: plain iteration converges here
        c = 1.5 * mf.gauss2(phi, phi, st.q_star, c) / st.q_star
    assert c == pytest.approx(st.c_star, abs=1e-8)


def test_no_correlation_root_below_one_raises():
    q = mf.fixed_point("tanh", 0.9, 0.05)  # ordered, with a bias: q* > 0 and c = 1 is the only fixed point
    with pytest.raises(RuntimeError, match="no correlation fixed point"):
        mf.correlation_fixed_point("tanh", 0.9, q, 0.05)


def test_chaotic_tanh_has_a_correlation_depth_and_a_gradient_growth_scale():
    """sigma_w^2 = 2, 3, 4 (sigma_b = 0): xi_c from the correlation map's fixed point below 1,
    and 1/ln chi_1 layers per e-fold of gradient growth; the ordered side has no growth scale."""
    from deepdepth.meanfield import stage

    got = [(round(s.q_star, 2), round(s.xi, 1), round(s.growth, 1)) for s in (stage("tanh", g) for g in (2, 3, 4))]
    assert got == [(0.62, 21.7, 10.0), (1.35, 10.9, 4.7), (2.12, 8.0, 3.2)]
    assert stage("tanh", 0.7).growth == math.inf and stage("tanh", 0.7).phase == "ordered"


def test_predict_from_sigma_w2_equals_the_init_spec_form():
    for activation, gain in (("tanh", 0.7), ("tanh", 1.3), ("elu", 0.9)):
        a, b = mf.predict(activation, sigma_w2=gain ** 2), mf.predict(activation, f"fan_in:{gain}")
        assert a.applicable and b.applicable
        assert a.k_star_pred == b.k_star_pred and a.xi == pytest.approx(b.xi, rel=1e-9)
        assert a.offset == pytest.approx(b.offset, rel=1e-9, abs=1e-12)
        assert [s.phase for s in a.stages] == [s.phase for s in b.stages]
    biased = mf.predict("tanh", sigma_w2=0.7, sigma_b2=0.05)
    assert biased.stages[0].q_star > 0 == mf.predict("tanh", sigma_w2=0.7).stages[0].q_star  # a bias keeps q* off 0
    assert mf.predict("elu", sigma_w2=1.0, residual=True).applicable is False


def test_predict_needs_exactly_one_of_init_and_sigma_w2():
    with pytest.raises(ValueError, match="either init .* or sigma_w2"):
        mf.predict("tanh")
    with pytest.raises(ValueError, match="either init .* or sigma_w2"):
        mf.predict("tanh", "fan_in", sigma_w2=1.0)
    with pytest.raises(ValueError, match="sigma_w2 must be positive.*-1"):
        mf.predict("tanh", sigma_w2=-1)


def test_every_public_function_has_a_docstring_with_a_working_example():
    import doctest
    import inspect

    from deepdepth.meanfield import gaussian, maps, network, table

    modules = (gaussian, maps, network, table)
    public = [f for m in modules for name, f in inspect.getmembers(m, inspect.isfunction)
              if not name.startswith("_") and f.__module__ == m.__name__]
    assert {"stage", "predict", "fixed_point"} <= {f.__name__ for f in public}
    assert [f.__name__ for f in public if ">>>" not in (f.__doc__ or "")] == []
    assert all(doctest.testmod(m).failed == 0 for m in modules)
