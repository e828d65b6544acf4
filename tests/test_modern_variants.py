"""Initialisation of the modern variants delta-orthogonal, SkipInit, Fixup."""
import math

import pytest
import torch

from deepdepth.models import INIT_RULES, VARIANTS, ConvBlock, DepthNet, build_model, conv_layers
from deepdepth.models.init import InitRule, check_init, conv_sigma, parse_init

def replica_slices(conv, replicas):
    c = conv.out_channels // replicas
    return [conv.weight.detach()[s * c:(s + 1) * c] for s in range(replicas)]


@pytest.mark.parametrize("gain", [None, 1.3])
def test_delta_orthogonal_is_a_scaled_orthogonal_centre(gain):
    init = "delta_orthogonal" if gain is None else f"delta_orthogonal:{gain}"
    g = 1.0 if gain is None else gain
    net = DepthNet(9, activation="tanh", init=init, seeds=[0, 1])
    for conv in conv_layers(net):
        assert torch.count_nonzero(conv.bias) == 0
        for w in replica_slices(conv, 2):
            off = w.clone()
            off[:, :, 1, 1] = 0
            assert torch.count_nonzero(off) == 0
            m = w[:, :, 1, 1].double()
            small = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
            assert torch.allclose(small, g * g * torch.eye(min(m.shape), dtype=torch.double), atol=1e-5)


def test_delta_orthogonal_replicas_differ_and_variant_is_critical_tanh():
    v = VARIANTS["cnn_tanh_deltaorth"]
    assert (v.activation, v.norm, v.residual, v.init) == ("tanh", False, False, "delta_orthogonal")
    a, b = replica_slices(conv_layers(build_model("cnn_tanh_deltaorth", 6, seeds=[0, 1]))[2], 2)
    assert not torch.allclose(a, b)


def test_skipinit_gains_start_at_zero_are_trainable_and_make_blocks_identities():
    net = build_model("resnet_nobn_skipinit", 12, seeds=[0, 1, 2])
    blocks = [m for m in net.modules() if isinstance(m, ConvBlock)]
    assert [b.gain is not None for b in blocks] == [False, True, True, True] * 3
    for b in blocks[1:4]:
        assert b.gain.shape == (3,) and b.gain.requires_grad and torch.all(b.gain == 0)
        x = torch.randn(2, 12, 7, 7)
        assert torch.equal(b(x), x)
    gains = [b.gain for b in blocks if b.gain is not None]
    assert all(any(g is p for p in net.parameters()) for g in gains)
    net(torch.randn(4, 1, 28, 28)).sum().backward()
    assert all(g.grad is not None and g.grad.abs().sum() > 0 for g in gains)


@pytest.mark.parametrize("k", [3, 12, 30])
def test_fixup_scales_branch_weights_by_inverse_sqrt_blocks_and_zeroes_the_classifier(k):
    net = build_model("resnet_nobn_fixup", k, seeds=[0, 1])
    blocks = [m for m in net.modules() if isinstance(m, ConvBlock)]
    n_branches = sum(b.skip for b in blocks)
    assert n_branches == k - 3
    for b in blocks:
        fan_in = math.sqrt(1 / (9 * b.c_in))
        want = fan_in * (n_branches ** -0.5 if b.skip else 1.0)
        w = b.conv.weight.detach()
        assert w.std().item() == pytest.approx(want, rel=0.5 if w.numel() < 300 else 0.2)
    assert torch.all(net.classifier.weight == 0) and torch.all(net.classifier.bias == 0)


def test_fixup_equals_fan_in_draws_times_the_scale():
    fixup, plain = build_model("resnet_nobn_fixup", 12, seeds=5), build_model("resnet_nobn", 12, seeds=5)
    for bf, bp in zip(*([m for m in n.modules() if isinstance(m, ConvBlock)] for n in (fixup, plain))):
        assert torch.allclose(bf.conv.weight, bp.conv.weight * (9 ** -0.5 if bp.skip else 1.0))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_packed_replicas_equal_separate_networks(name):
    packed = build_model(name, 6, seeds=[7, 8])
    singles = [build_model(name, 6, seeds=s) for s in (7, 8)]
    for cp, *cs in zip(conv_layers(packed), *(conv_layers(n) for n in singles)):
        for w, c in zip(replica_slices(cp, 2), cs):
            assert torch.equal(w, c.weight.detach())
    for s, single in enumerate(singles):
        assert torch.equal(packed.classifier.weight[s], single.classifier.weight[0])


def test_study_variants_keep_their_draw_order():
    """The seven study variants still draw conv weights, then the classifier, from one generator."""
    net = build_model("cnn_tanh_newinit", 6, seeds=11)
    gen = torch.Generator().manual_seed(11)
    for conv in conv_layers(net):
        want = torch.randn(conv.weight.shape, generator=gen) * math.sqrt(1 / (9 * conv.in_channels))
        assert torch.equal(conv.weight.detach(), want)
    bound = 1 / 12
    assert torch.equal(net.classifier.weight[0].detach(), torch.rand((10, 144), generator=gen) * 2 * bound - bound)


def test_gain_suffix_on_any_rule():
    for spec in ("fan_in:2", "delta_orthogonal:1.05", "naive", "fixup:0.5"):
        assert check_init(spec) == spec
    for spec in ("fan_in:x", "nope:2", "fan_in:nan", "fan_in:inf", "xavier"):
        with pytest.raises(ValueError, match="unknown init|finite number"):
            check_init(spec)
    assert parse_init("delta_orthogonal:1.05") == (INIT_RULES["delta_orthogonal"], 1.05)
    assert parse_init("naive") == (INIT_RULES["naive"], 1.0)
    a = DepthNet(6, init="fan_in:2", seeds=3)
    b = DepthNet(6, init="fan_in", seeds=3)
    assert all(torch.allclose(ca.weight, 2 * cb.weight) for ca, cb in zip(conv_layers(a), conv_layers(b)))
    assert conv_sigma("naive:2", 4, 4) == pytest.approx(0.1)
    assert 9 * 8 * conv_sigma("delta_orthogonal", 8, 8) ** 2 == pytest.approx(1.0)
    with pytest.raises(ValueError, match="finite number"):
        DepthNet(3, init="fan_in:abc", seeds=0)


def test_init_rules_are_plain_records():
    """One table: what each rule draws, and the facts the init loop and the mean field read."""
    assert type(INIT_RULES) is dict and all(isinstance(r, InitRule) for r in INIT_RULES.values())
    assert [n for n, r in INIT_RULES.items() if r.branch_scale] == ["fixup"]
    assert [n for n, r in INIT_RULES.items() if r.zero_classifier] == ["fixup"]
    assert [n for n, r in INIT_RULES.items() if r.orthogonal] == ["delta_orthogonal"]
    assert INIT_RULES["fixup"].branch_scale(9) == pytest.approx(1 / 3)
