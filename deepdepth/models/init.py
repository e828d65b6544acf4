"""Initialisation rules. Each draws one replica's slice from that replica's own generator,
so a packed replica is initialised exactly like a separate network with the same seed."""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from .blocks import ReplicaLinear

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


INIT_RULES: dict[str, InitRule] = {
    "naive": _normal(lambda c_in, c_out: 0.05),
    "fan_in": _normal(lambda c_in, c_out: math.sqrt(1.0 / (9 * c_in))),
    "fan_out": _normal(lambda c_in, c_out: math.sqrt(1.0 / (9 * c_out))),
    "delta_orthogonal": delta_orthogonal,
}


def conv_sigma(rule: str, c_in: int, c_out: int) -> float:
    """The weight standard deviation of a normal init rule (used by the mean-field theory)."""
    return {"naive": 0.05, "fan_in": math.sqrt(1.0 / (9 * c_in)),
            "fan_out": math.sqrt(1.0 / (9 * c_out))}[rule]


@torch.no_grad()
def initialise(net: nn.Module, rule: str, seeds: list[int]) -> None:
    """One loop over the network: conv weights by ``rule`` and zero bias; the classifier
    as PyTorch's default Linear init, U(-1/sqrt(in), 1/sqrt(in)); BatchNorm left as is."""
    if rule not in INIT_RULES:
        raise ValueError(f"unknown init {rule!r}; choose one of {sorted(INIT_RULES)}")
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            c_out = m.out_channels // len(gens)
            for s, gen in enumerate(gens):
                w = m.weight[s * c_out:(s + 1) * c_out]
                w.copy_(INIT_RULES[rule](w, gen))
            nn.init.zeros_(m.bias)
        elif isinstance(m, ReplicaLinear):
            bound = 1.0 / math.sqrt(m.in_features)
            for s, gen in enumerate(gens):
                m.weight[s].copy_(torch.rand(m.weight[s].shape, generator=gen) * 2 * bound - bound)
                m.bias[s].copy_(torch.rand(m.bias[s].shape, generator=gen) * 2 * bound - bound)
