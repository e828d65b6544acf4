"""Architecture facts of every variant."""
import math

import pytest
import torch
from torch import nn

from deepdepth.models import VARIANTS, ConvBlock, DepthNet, ReplicaLinear, build_model, conv_layers, count_parameters

NAMES = sorted(VARIANTS)  # every variant of conf/model/*.yaml


def expected_params(k: int, norm: bool, branch_gain: bool = False) -> int:
    n, total, c_in = k // 3, 0, 1
    for width in (4, 8, 16):
        for i in range(n):
            cin = c_in if i == 0 else width
            total += 9 * cin * width + width + (2 * width if norm else 0) + (branch_gain and i > 0)
        c_in = width
    return total + 144 * 10 + 10


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("k", [3, 12, 45])
def test_layers_channels_and_parameters(name, k):
    v = VARIANTS[name]
    net = build_model(name, k, seeds=0)
    convs = conv_layers(net)
    assert len(convs) == k
    n = k // 3
    widths = [4] * n + [8] * n + [16] * n
    assert [c.out_channels for c in convs] == widths
    assert [c.in_channels for c in convs] == [1] + widths[:-1]
    assert all(c.kernel_size == (3, 3) and c.stride == (1, 1) and c.padding == (1, 1) and c.bias is not None for c in convs)
    pools = [m for m in net.modules() if isinstance(m, nn.AvgPool2d)]
    assert len(pools) == 3 and all(p.kernel_size == 2 and p.stride == 2 for p in pools)
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == (k if v.norm else 0)
    acts = [m for m in net.modules() if isinstance(m, (nn.Tanh, nn.ELU))]
    assert len(acts) == k and all(isinstance(a, nn.Tanh if v.activation == "tanh" else nn.ELU) for a in acts)
    assert isinstance(net.classifier, ReplicaLinear)
    assert (net.classifier.in_features, net.classifier.out_features) == (144, 10)
    assert count_parameters(net) == expected_params(k, v.norm, v.branch_gain and v.residual)
    assert net(torch.randn(5, 1, 28, 28)).shape == (5, 10)


@pytest.mark.parametrize("name", NAMES)
def test_skips_on_every_block_but_the_first_of_each_stage(name):
    net = build_model(name, 12, seeds=0)
    blocks = [m for m in net.modules() if isinstance(m, ConvBlock)]
    skips = [b.skip for b in blocks]
    if VARIANTS[name].residual:
        assert skips == [False, True, True, True] * 3
    else:
        assert not any(skips)


def test_skip_is_added_after_the_activation():
    block = ConvBlock(4, 4, "elu", norm=False, skip=True)
    x = torch.randn(2, 4, 8, 8)
    assert torch.allclose(block(x), torch.nn.functional.elu(block.conv(x)) + x)


@pytest.mark.parametrize("name, rule", [("cnn_tanh", "naive"), ("cnn_tanh_newinit", "fan_in"), ("resnet", "fan_in")])
def test_init_statistics(name, rule):
    net = build_model(name, 30, seeds=1)
    for conv in conv_layers(net):
        sigma = 0.05 if rule == "naive" else math.sqrt(1 / (9 * conv.in_channels))
        w = conv.weight.detach()
        assert torch.count_nonzero(conv.bias) == 0
        assert abs(w.mean().item()) < 4 * sigma / math.sqrt(w.numel())
        assert w.std().item() == pytest.approx(sigma, rel=0.5 if w.numel() < 200 else 0.15)
    bound = 1 / 12
    assert net.classifier.weight.abs().max() <= bound and net.classifier.weight.std() > bound / 3


def test_norms_keep_pytorch_defaults():
    net = build_model("cnn_elu_bn", 6, seeds=0)
    for bn in (m for m in net.modules() if isinstance(m, nn.BatchNorm2d)):
        assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)


def test_seed_fixes_init_and_differs_between_seeds():
    a, b, c = (build_model("cnn_elu", 6, seeds=s) for s in (7, 7, 8))
    assert torch.equal(conv_layers(a)[3].weight, conv_layers(b)[3].weight)
    assert not torch.equal(conv_layers(a)[3].weight, conv_layers(c)[3].weight)


def test_global_seed_used_when_none_given():
    torch.manual_seed(3)
    a = DepthNet(6)
    torch.manual_seed(3)
    b = DepthNet(6)
    assert torch.equal(conv_layers(a)[0].weight, conv_layers(b)[0].weight)


@pytest.mark.parametrize("k", [0, -3, 4, 10, 3.0, "9", True])
def test_bad_depth_is_refused(k):
    with pytest.raises(ValueError, match="positive multiple of 3"):
        DepthNet(k)


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        build_model("vgg", 3)
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        DepthNet(3, activation="gelu")
    with pytest.raises(ValueError, match="unknown init 'xavier'"):
        DepthNet(3, init="xavier")


def test_packed_network_shapes():
    net = build_model("resnet", 6, seeds=[0, 1, 2])
    assert net.replicas == 3
    assert net(torch.randn(4, 3, 28, 28)).shape == (4, 3, 10)
    assert net(torch.randn(4, 1, 28, 28)).shape == (4, 3, 10)  # one batch shared by every replica
    assert count_parameters(net) == 3 * count_parameters(build_model("resnet", 6, seeds=0))


def test_widths_set_every_stages_channels_and_the_classifier():
    net = build_model("resnet", 6, widths=(2, 4, 8))
    convs = conv_layers(net)
    assert [c.out_channels for c in convs] == [2, 2, 4, 4, 8, 8] and net.widths == (2, 4, 8)
    assert net.classifier.in_features == 8 * 9 and net(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert [c.out_channels for c in conv_layers(build_model("resnet", 6))] == [4, 4, 8, 8, 16, 16]
    with pytest.raises(ValueError, match=r"model.widths must list three positive channel counts.*\[4, 0\]"):
        build_model("cnn_tanh", 3, widths=[4, 0])


def test_mean_field_ignores_widths_under_a_fan_in_init():
    from deepdepth.meanfield import predict

    study, wide = predict("tanh", "fan_in:0.8"), predict("tanh", "fan_in:0.8", widths=(8, 16, 32))
    assert study.k_pred == pytest.approx(wide.k_pred) and study.xi == pytest.approx(wide.xi)
    assert predict("tanh", "fan_in:0.8", widths=(2, 4, 8)).k_pred == pytest.approx(study.k_pred)


def test_memory_and_cost_grow_with_widths():
    from deepdepth.models import pack_memory_bytes
    from deepdepth.sweep.cost import cost_kind, width_cost

    assert pack_memory_bytes(30, widths=(8, 16, 32)) > 1.9 * pack_memory_bytes(30)
    assert width_cost((8, 16, 32)) == pytest.approx(4.0) and width_cost(None) == 1.0
    assert cost_kind("cnn_tanh", (4, 8, 16)) == "cnn_tanh" != cost_kind("cnn_tanh", (2, 4, 8))


def test_repr_names_the_variant_norm_skips_init_and_widths():
    resnet, plain = repr(build_model("resnet", 6)), repr(build_model("cnn_elu_bn", 6))
    assert resnet != plain
    assert "variant=resnet" in resnet and "norm=batchnorm" in resnet and "residual=True (skips)" in resnet
    assert "init=fan_in" in resnet and "widths=(4, 8, 16)" in resnet and "4 -> 4, skip=True" in resnet
    assert "residual=False (no skips)" in plain and "skip=True" not in plain
    nobn = repr(DepthNet(3, activation="tanh", init="fan_in:0.7", seeds=[0, 1]))
    assert "norm=none" in nobn and "init=fan_in:0.7" in nobn and "replicas=2" in nobn


def test_compile_key_ignores_init_and_seeds():
    """A new init or seed is the same network to compile: its step key does not change."""
    a = DepthNet(3, init="fan_in:0.5", seeds=[0])
    b = DepthNet(3, init="fan_in:0.9", seeds=[7])
    assert a.structure() == b.structure() and repr(a) != repr(b)
    assert a.structure() != DepthNet(3, norm=True, seeds=[0]).structure()
    assert a.structure() != DepthNet(3, init="fan_in:0.5", seeds=[0], widths=(2, 4, 8)).structure()
