"""Replicas of different depths, or different init gains, packed in one DepthNet (issues 11, 17):
each replica is initialised and trains exactly as its own single network with its seed; a masked
block leaks nothing (no NaN, no gradient); and the memory estimate matches a measured count."""
from __future__ import annotations

from dataclasses import asdict

import pytest
import torch
import torch.nn.functional as F

from deepdepth.models import VARIANTS, ConvBlock, DepthNet, pack_memory_bytes

SEEDS = [3, 4, 5]


def replica_state(packed: DepthNet, s: int, depth: int) -> dict[str, torch.Tensor]:
    """Replica s's slice of every tensor of the blocks it uses (block index < depth/3 in each
    stage) and of the classifier, keyed as in DepthNet(depth, seeds=[seed])."""
    out = {}
    for key, t in packed.state_dict().items():
        parts = key.split(".")
        if parts[0] == "features" and int(parts[2]) >= depth // 3:
            continue
        out[key] = t if t.dim() == 0 else t.chunk(packed.replicas, dim=0)[s]
    return out


CASES = {  # (variant, depths, inits): plain, BatchNorm, residual (Fixup: its own L), SkipInit, gains
    "plain": ("cnn_tanh_newinit", [3, 9, 6], None),
    "batchnorm": ("cnn_elu_bn", [6, 3, 9], None),
    "fixup": ("resnet_nobn_fixup", [9, 3, 6], None),
    "skipinit": ("resnet_nobn_skipinit", [6, 9, 6], None),
    "init_gains": ("cnn_tanh_newinit", [9, 9, 9], ["fan_in:0.5", "fan_in:0.7", "fan_in:0.85"]),
    "gains_and_depths": ("cnn_tanh_newinit", [3, 9, 6], ["fan_in:0.5", "fan_in:1.2", "naive"]),
}


def build(case: str) -> tuple[DepthNet, list[DepthNet]]:
    name, depths, inits = CASES[case]
    kw = asdict(VARIANTS[name])
    inits = inits or [kw["init"]] * len(SEEDS)
    kw.pop("init")
    packed = DepthNet(max(depths), init=inits, seeds=SEEDS, depths=depths, **kw)
    singles = [DepthNet(d, init=i, seeds=[s], **kw) for d, i, s in zip(depths, inits, SEEDS)]
    if kw["branch_gain"]:  # zero gains would hide the residual branches: open them, the same in both
        with torch.no_grad():
            for net in [packed] + singles:
                for m in net.modules():
                    if isinstance(m, ConvBlock) and m.gain is not None:
                        m.gain.fill_(0.7)
    return packed, singles


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_replica_is_initialised_as_its_own_network(case):
    packed, singles = build(case)
    for s, single in enumerate(singles):
        want = single.state_dict()
        got = replica_state(packed, s, single.k)
        assert got.keys() == want.keys()
        for key in want:
            assert torch.equal(got[key], want[key]), f"replica {s}: {key}"


def sgd_losses(net: DepthNet, batches, lr: float = 0.05) -> torch.Tensor:
    """Plain SGD with momentum on the summed per-replica mean cross-entropy; losses (steps, replicas)."""
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    history = []
    for x, y in batches:
        logits = net(x).reshape(-1, 10)  # (N * S, 10), replica-minor as y.reshape(-1)
        per_replica = F.cross_entropy(logits, y.reshape(-1), reduction="none").view(y.shape).mean(0)
        opt.zero_grad()
        per_replica.sum().backward()
        opt.step()
        history.append(per_replica.detach())
    return torch.stack(history)


@pytest.mark.parametrize("case", ["plain", "batchnorm", "fixup", "skipinit", "init_gains", "gains_and_depths"])
def test_each_replica_trains_as_its_own_network(case):
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.randn(32, len(SEEDS), 28, 28, generator=gen), torch.randint(0, 10, (32, len(SEEDS)), generator=gen))
               for _ in range(4)]
    packed, singles = build(case)
    packed_losses = sgd_losses(packed, batches)
    for s, single in enumerate(singles):
        alone = sgd_losses(single, [(x[:, s:s + 1], y[:, s:s + 1]) for x, y in batches])
        torch.testing.assert_close(packed_losses[:, s], alone[:, 0], atol=1e-5, rtol=1e-4)
        got = replica_state(packed, s, single.k)
        for key, value in single.state_dict().items():
            torch.testing.assert_close(got[key], value, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(packed_losses[:, 0], packed_losses[:, 1])


def masked_blocks(net: DepthNet) -> list[ConvBlock]:
    return [m for m in net.modules() if isinstance(m, ConvBlock) and m.masked]


def replica_grads(block: ConvBlock, s: int) -> list[torch.Tensor]:
    grads = [p.grad.chunk(block.replicas, dim=0)[s] for p in block.parameters()]
    assert len(grads) == (2 + 2 * isinstance(block.norm, torch.nn.BatchNorm2d) + (block.gain is not None))
    return grads


@pytest.mark.parametrize("name", ["cnn_elu_bn", "resnet_nobn_skipinit", "cnn_tanh"])
def test_masked_blocks_get_exactly_zero_gradients(name):
    kw = asdict(VARIANTS[name])
    net = DepthNet(9, seeds=SEEDS, depths=[3, 9, 6], **kw)
    with torch.no_grad():  # non-zero SkipInit gains, so the active branches do get gradients
        for b in masked_blocks(net):
            if b.gain is not None:
                b.gain.fill_(0.5)
    net(torch.randn(8, 3, 28, 28)).square().sum().backward()
    blocks = masked_blocks(net)
    assert [sorted(b.masked) for b in blocks] == [[0], [0, 2]] * 3  # blocks 1, 2 of each stage
    for b in blocks:
        for s in range(net.replicas):
            grads = replica_grads(b, s)
            if s in b.masked:
                assert all(torch.count_nonzero(g) == 0 for g in grads)
            else:
                assert all(torch.count_nonzero(g) > 0 for g in grads[:2])


def test_nan_in_a_masked_block_leaks_nowhere():
    x = torch.randn(8, 3, 28, 28)
    clean = DepthNet(9, activation="elu", norm=True, residual=True, seeds=SEEDS, depths=[3, 9, 6])
    poisoned = DepthNet(9, activation="elu", norm=True, residual=True, seeds=SEEDS, depths=[3, 9, 6])
    with torch.no_grad():  # replica 0 skips block 1 of stage 2: NaN weights, NaN BatchNorm scale there
        block = poisoned.features[1][1]
        assert 0 in block.masked
        block.conv.weight[:8].fill_(float("nan"))
        block.norm.weight[:8].fill_(float("nan"))
    outs = []
    for net in (clean, poisoned):
        out = net(x)
        out.square().sum().backward()
        outs.append(out)
    assert torch.isfinite(outs[1]).all()
    torch.testing.assert_close(outs[1], outs[0], atol=0, rtol=0)
    for (key, p), q in zip(poisoned.named_parameters(), clean.parameters()):
        if key.startswith("features.1.1."):  # the poisoned block itself: the other replicas' slices
            assert torch.equal(p.grad[8:], q.grad[8:]), key
            continue
        assert torch.isfinite(p.grad).all(), key
        assert torch.equal(p.grad, q.grad), key


@pytest.mark.parametrize("kwargs, match", [
    (dict(depths=[3, 6]), "one per replica"),
    (dict(depths=[3, 6, 4]), "multiple of 3"),
    (dict(depths=[3, 6, 6]), "deepest replica"),
    (dict(init=["fan_in", "naive"]), "one per replica"),
    (dict(init=["fan_in", "naive", "fan_in:x"]), "finite number"),
])
def test_bad_per_replica_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DepthNet(9, seeds=SEEDS, **kwargs)


def measured_bytes(net: DepthNet, batch: int) -> int:
    """Bytes autograd keeps for backward (each storage once) plus gradients and momentum (2x parameters)."""
    seen = {}

    def keep(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        net(torch.randn(batch, net.replicas, 28, 28)).sum()
    return sum(seen.values()) + 2 * 4 * sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("name, k, depths", [
    ("cnn_tanh", 6, None), ("cnn_elu", 6, [3, 6]), ("cnn_elu_bn", 9, None), ("resnet", 9, [9, 3]),
    ("resnet_nobn_skipinit", 12, None), ("cnn_tanh_bn_oldinit", 12, [6, 12]),
])
def test_memory_estimate_matches_what_autograd_keeps(name, k, depths):
    v = VARIANTS[name]
    replicas, batch = 2, 16
    net = DepthNet(k, seeds=[0, 1], depths=depths, **asdict(v))
    estimate = pack_memory_bytes(k, replicas, batch, v.norm, activation=v.activation, residual=v.residual,
                                 branch_gain=v.branch_gain, depths=depths)
    assert 1 / 1.5 < estimate / measured_bytes(net, batch) < 1.5
    assert pack_memory_bytes(k, 2 * replicas, batch, v.norm) > pack_memory_bytes(k, replicas, batch, v.norm)
