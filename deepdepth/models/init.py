"""Initialisation rules: one table of plain records, read by the init loop and by the mean-field theory.

Every replica draws its slice from its own generator, in the order its own single network
would (active convs stage by stage, then the classifier; a mixed-depth pack's masked convs
after that), so a packed replica is initialised exactly like a separate network with its seed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .blocks import ConvBlock, ReplicaLinear

Sigma = Callable[[int, int], float]  # (c_in, c_out) -> weight standard deviation


def normal_draw(shape: torch.Size, gen: torch.Generator, sigma: float) -> torch.Tensor:
    """A N(0, sigma^2) weight of ``shape`` from ``gen``."""
    return torch.randn(shape, generator=gen) * sigma


def delta_orthogonal(shape: torch.Size, gen: torch.Generator, sigma: float = 1.0) -> torch.Tensor:
    """Xiao et al. 2018: zero kernel except its centre, an orthogonal c_out x c_in matrix (Haar)."""
    c_out, c_in = shape[:2]
    a = torch.randn(max(c_out, c_in), min(c_out, c_in), generator=gen, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r))  # Haar-distributed
    if c_out < c_in:
        q = q.T
    w = torch.zeros(shape, dtype=torch.float64)
    w[:, :, shape[2] // 2, shape[3] // 2] = q[:c_out, :c_in]
    return w  # float64: the gain is applied before rounding to the weight's dtype


def fan_in(c_in: int, c_out: int) -> float:
    """LeCun's fan-in std for a 3x3 conv: sqrt(1 / (9 c_in)), sigma_w^2 = 1."""
    return math.sqrt(1.0 / (9 * c_in))


@dataclass(frozen=True)
class InitRule:
    """How one rule initialises a network.

    ``draw(shape, gen, std)`` draws a conv weight before the gain (``std`` = ``sigma(c_in, c_out)``,
    used by normal draws); ``sigma``: the weight std, or for delta-orthogonal the normal std with the same mean
    squared row norm (what the mean-field variance map sees); ``branch_scale(L)`` multiplies
    residual-branch convs given L residual blocks (None: no scaling); ``zero_classifier``: the
    last layer starts at zero; ``orthogonal``: kernels are (delta-)orthogonal, an isometry the
    mean-field mean does not see.
    """
    name: str
    draw: Callable[[torch.Size, torch.Generator, float], torch.Tensor]
    sigma: Sigma
    branch_scale: Callable[[int], float] | None = None
    zero_classifier: bool = False
    orthogonal: bool = False


def _fixup_scale(n_branches: int) -> float:
    """Fixup's L^(-1/(2m-2)) is undefined for m=1 layer per branch; L^(-1/2) keeps the variance the
    branches add (sum over L blocks of scale^2 * O(1)) bounded as L grows, which is Fixup's aim."""
    return n_branches ** -0.5 if n_branches else 1.0


INIT_RULES: dict[str, InitRule] = {rule.name: rule for rule in (
    InitRule("naive", normal_draw, lambda c_in, c_out: 0.05),
    InitRule("fan_in", normal_draw, fan_in),
    InitRule("fan_out", normal_draw, lambda c_in, c_out: math.sqrt(1.0 / (9 * c_out))),
    InitRule("delta_orthogonal", delta_orthogonal,
             lambda c_in, c_out: math.sqrt(min(c_in, c_out) / c_out / (9 * c_in)), orthogonal=True),
    # Fixup (Zhang et al. 2019) adapted to one-layer branches: fan-in, branch convs times L^(-1/2),
    # classifier zeroed, so the initial output is 0.
    InitRule("fixup", normal_draw, fan_in, branch_scale=_fixup_scale, zero_classifier=True),
)}


def parse_init(spec: str) -> tuple[InitRule, float]:
    """``"delta_orthogonal:1.2"`` -> (the delta_orthogonal rule, 1.2): any rule times a positive gain,
    so the gain is set from the existing ``model.init`` key (``model.init=fan_in:0.7``)."""
    name, sep, gain_text = str(spec).partition(":")
    if name not in INIT_RULES:
        raise ValueError(f"unknown init {spec!r}; choose one of {sorted(INIT_RULES)}, optionally "
                         f"with a gain (e.g. 'fan_in:0.7')")
    try:
        gain = float(gain_text) if sep else 1.0
    except ValueError:
        gain = math.nan
    if not math.isfinite(gain) or gain <= 0:  # a zero or negative gain draws no network the study means
        raise ValueError(f"bad init {spec!r}: the gain after ':' must be a finite number > 0")
    return INIT_RULES[name], gain


def check_init(spec) -> str:
    """``spec`` if it names a rule (with an optional positive gain); ValueError saying why otherwise."""
    parse_init(spec)
    return spec


def conv_sigma(spec: str, c_in: int, c_out: int) -> float:
    """The weight standard deviation of ``spec`` for a c_in -> c_out conv, gain included (before any
    branch scale): what the mean-field variance map uses."""
    rule, gain = parse_init(spec)
    return gain * rule.sigma(c_in, c_out)


@torch.no_grad()
def initialise(net: nn.Module, specs: list[str], seeds: list[int]) -> None:
    """Conv weights by each replica's rule and zero bias; the classifier as PyTorch's default Linear
    init, U(-1/sqrt(in), 1/sqrt(in)), or zero for rules that zero it; BatchNorm left as is.

    Replica s draws, from its own generator, the convs active for it in network order, then its
    classifier, then its masked convs (mixed-depth packs), so its draws are those of its own
    single-depth network. Branch scales count the replica's own residual blocks."""
    rules = [parse_init(spec) for spec in specs]
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    blocks = [m for m in net.modules() if isinstance(m, ConvBlock)]
    n_branches = [sum(b.skip and s not in b.masked for b in blocks) for s in range(len(gens))]
    deferred = []
    for block in blocks:
        nn.init.zeros_(block.conv.bias)
        for s in range(len(gens)):
            if s in block.masked:
                deferred.append((block, s))
            else:
                _draw_conv(block, s, rules[s], n_branches[s], gens[s])
    for m in net.modules():
        if isinstance(m, ReplicaLinear):
            for s, gen in enumerate(gens):
                _draw_classifier(m, s, rules[s][0], gen)
    for block, s in deferred:
        _draw_conv(block, s, rules[s], n_branches[s], gens[s])


def _draw_conv(block: ConvBlock, s: int, rule_gain: tuple[InitRule, float], n_branches: int,
               gen: torch.Generator) -> None:
    rule, gain = rule_gain
    conv, c = block.conv, block.c_out
    w = conv.weight[s * c:(s + 1) * c]
    w.copy_(rule.draw(w.shape, gen, rule.sigma(block.c_in, block.c_out)) * gain)
    if block.skip and rule.branch_scale:
        w.mul_(rule.branch_scale(n_branches))


def _draw_classifier(m: ReplicaLinear, s: int, rule: InitRule, gen: torch.Generator) -> None:
    if rule.zero_classifier:
        m.weight[s].zero_()
        m.bias[s].zero_()
        return
    bound = 1.0 / math.sqrt(m.in_features)
    m.weight[s].copy_(torch.rand(m.weight[s].shape, generator=gen) * 2 * bound - bound)
    m.bias[s].copy_(torch.rand(m.bias[s].shape, generator=gen) * 2 * bound - bound)
