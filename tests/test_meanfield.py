"""Mean-field quantities against closed forms (issue 6)."""
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
    rate = sum(-math.log(s) for s in (0.09, 0.18, 0.36))
    assert naive.k_pred == pytest.approx(6 * 3 / rate) and naive.k_star_pred == 3
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
