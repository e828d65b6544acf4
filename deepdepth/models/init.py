"""Initialisation rules. Each draws one replica's slice from that replica's own generator,
so a packed replica is initialised exactly like a separate network with the same seed."""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from .blocks import ConvBlock, ReplicaLinear

InitRule = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _normal(sigma_of: Callable[[int, int], float]) -> InitRule:
    def rule(weight: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        c_out, c_in = weight.shape[:2]
        return torch.randn(weight.shape, generator=gen) * sigma_of(c_in, c_out)
    return rule


def delta_orthogonal(weight: torch.Tensor, gen: torch.Generator, gain: float = 1.0) -> torch.Tensor:
    """Xiao et al. 2018: zero kernel except its centre, an orthogonal c_out x c_in matrix times gain."""
    c_out, c_in = weight.shape[:2]
    a = torch.randn(max(c_out, c_in), min(c_out, c_in), generator=gen, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r))  # Haar-distributed
    if c_out < c_in:
        q = q.T
    w = torch.zeros(weight.shape, dtype=torch.float64)
    w[:, :, weight.shape[2] // 2, weight.shape[3] // 2] = q[:c_out, :c_in]
    return (w * gain).to(weight.dtype)


def parse_init(spec: str) -> tuple[str, float]:
    """``"delta_orthogonal:1.2"`` -> ("delta_orthogonal", 1.2): any rule times a gain, so the gain
    is set from the existing ``model.init`` key (``model.init=delta_orthogonal:1.05``)."""
    name, _, gain = str(spec).partition(":")
    try:
        return name, float(gain) if gain else 1.0
    except ValueError:
        raise ValueError(f"bad init {spec!r}: the gain after ':' must be a number") from None


class _Rules(dict):
    """The rule table; also answers ``"name:gain"`` (the rule's weights times gain)."""

    def _split(self, spec) -> tuple[str, float] | None:
        if ":" not in str(spec):
            return None
        try:
            name, gain = parse_init(spec)
        except ValueError:
            return None
        return (name, gain) if dict.__contains__(self, name) and math.isfinite(gain) else None

    def __contains__(self, spec) -> bool:
        return dict.__contains__(self, spec) or self._split(spec) is not None

    def __missing__(self, spec):
        split = self._split(spec)
        if split is None:
            raise KeyError(spec)
        name, gain = split
        return lambda weight, gen: dict.__getitem__(self, name)(weight, gen) * gain


# Standard deviations of the normal rules, as functions of (c_in, c_out): the one definition,
# shared by the init rules and the mean-field theory (conv_sigma).
SIGMAS: dict[str, Callable[[int, int], float]] = {
    "naive": lambda c_in, c_out: 0.05,
    "fan_in": lambda c_in, c_out: math.sqrt(1.0 / (9 * c_in)),
    "fan_out": lambda c_in, c_out: math.sqrt(1.0 / (9 * c_out)),
}

INIT_RULES: dict[str, InitRule] = _Rules({
    **{name: _normal(sigma) for name, sigma in SIGMAS.items()},
    "delta_orthogonal": delta_orthogonal,
    # Fixup (Zhang et al. 2019) adapted to one-layer branches: fan-in, then residual-branch convs
    # scaled by L^(-1/2) and the classifier zeroed inside ``initialise`` (see BRANCH_SCALE).
    "fixup": _normal(SIGMAS["fan_in"]),
})

# Rules that rescale residual-branch convs, as a function of the number L of residual blocks.
# Fixup's L^(-1/(2m-2)) is undefined for m=1 layer per branch; L^(-1/2) keeps the variance the
# branches add, sum over L blocks of (scale^2 * O(1)), bounded as L grows, which is Fixup's aim.
BRANCH_SCALE: dict[str, Callable[[int], float]] = {"fixup": lambda n: n ** -0.5 if n else 1.0}
ZERO_CLASSIFIER = {"fixup"}  # Fixup starts the last layer at zero, so the initial output is 0


def conv_sigma(rule: str, c_in: int, c_out: int) -> float:
    """The weight standard deviation of a rule (delta-orthogonal: the normal std with the same
    mean squared row norm), used by the mean-field theory. Not defined for branch-scaled rules."""
    name, gain = parse_init(rule)
    if name == "delta_orthogonal":
        return gain * math.sqrt(min(c_in, c_out) / c_out / (9 * c_in))
    return gain * SIGMAS[name](c_in, c_out)


@torch.no_grad()
def initialise(net: nn.Module, rule: str, seeds: list[int]) -> None:
    """One loop over the network: conv weights by ``rule`` and zero bias; the classifier
    as PyTorch's default Linear init, U(-1/sqrt(in), 1/sqrt(in)); BatchNorm left as is.
    Branch-scaled rules (fixup) multiply residual-branch weights after drawing them, so every
    replica's generator is consumed in the same order as for the plain rule."""
    if rule not in INIT_RULES:
        raise ValueError(f"unknown init {rule!r}; choose one of {sorted(INIT_RULES)}")
    name = parse_init(rule)[0]
    branches = {id(b.conv) for b in net.modules() if isinstance(b, ConvBlock) and b.skip}
    scale = BRANCH_SCALE[name](len(branches)) if name in BRANCH_SCALE else 1.0
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            c_out = m.out_channels // len(gens)
            for s, gen in enumerate(gens):
                w = m.weight[s * c_out:(s + 1) * c_out]
                w.copy_(INIT_RULES[rule](w, gen))
                if id(m) in branches and scale != 1.0:
                    w.mul_(scale)
            nn.init.zeros_(m.bias)
        elif isinstance(m, ReplicaLinear) and name in ZERO_CLASSIFIER:
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, ReplicaLinear):
            bound = 1.0 / math.sqrt(m.in_features)
            for s, gen in enumerate(gens):
                m.weight[s].copy_(torch.rand(m.weight[s].shape, generator=gen) * 2 * bound - bound)
                m.bias[s].copy_(torch.rand(m.bias[s].shape, generator=gen) * 2 * bound - bound)
