"""DepthNet: the one builder behind every variant of the study (SPEC section 2)."""
from __future__ import annotations

from dataclasses import dataclass, asdict

import torch
from torch import nn

from .blocks import ReplicaLinear, Stage
from .init import initialise

WIDTHS = (4, 8, 16)
POOLED = 3 * 3  # 28 -> 14 -> 7 -> 3


def check_depth(k) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0 or k % 3:
        raise ValueError(f"k must be a positive multiple of 3 (three stages of k/3 convolutions), got k={k!r}")
    return k


class DepthNet(nn.Module):
    """k 3x3 convolutions in three stages of k/3 (4, 8, 16 channels), each stage ending in
    2x2 average pooling, then a 144 -> 10 linear layer.

    ``replicas=S`` packs S independent networks, one per seed in ``seeds``; the input is then
    (N, S, 28, 28) (each replica its own images) or (N, 1, 28, 28) (shared), and the output
    (N, S, 10). With one replica the output is (N, 10), as for any classifier.
    """

    def __init__(self, k: int, activation: str = "tanh", norm: bool = False, residual: bool = False,
                 init: str = "fan_in", seeds: list[int] | int | None = None, branch_gain: bool = False):
        super().__init__()
        check_depth(k)
        if seeds is None:
            seeds = [int(torch.randint(2**62, ()).item())]  # follows torch.manual_seed
        self.seeds = [int(seeds)] if isinstance(seeds, int) else [int(s) for s in seeds]
        self.replicas = len(self.seeds)
        self.k = k
        stages, c_in = [], 1
        for width in WIDTHS:
            stages.append(Stage(c_in, width, k // 3, activation, norm, residual, self.replicas, branch_gain))
            c_in = width
        self.features = nn.Sequential(*stages)
        self.classifier = ReplicaLinear(WIDTHS[-1] * POOLED, 10, self.replicas)
        initialise(self, init, self.seeds)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.replicas:
            x = x.expand(-1, self.replicas, -1, -1)
        h = self.features(x)
        logits = self.classifier(h.reshape(h.shape[0], self.replicas, -1))
        return logits if self.replicas > 1 else logits[:, 0]


@dataclass(frozen=True)
class Variant:
    activation: str
    norm: bool
    residual: bool
    init: str
    branch_gain: bool = False


# The seven variants of SPEC section 3, then the modern ones of issue 6
# (conf/model/*.yaml mirror these; tests/test_variants_conf.py checks they agree).
VARIANTS: dict[str, Variant] = {
    "cnn_tanh": Variant("tanh", norm=False, residual=False, init="naive"),
    "cnn_tanh_newinit": Variant("tanh", norm=False, residual=False, init="fan_in"),
    "cnn_elu": Variant("elu", norm=False, residual=False, init="fan_in"),
    "cnn_elu_bn": Variant("elu", norm=True, residual=False, init="fan_in"),
    "resnet": Variant("elu", norm=True, residual=True, init="fan_in"),
    "cnn_tanh_bn_oldinit": Variant("tanh", norm=True, residual=False, init="naive"),
    "resnet_nobn": Variant("elu", norm=False, residual=True, init="fan_in"),
    # Modern depth-enabling variants (issue 6), built from the same blocks.
    "cnn_tanh_deltaorth": Variant("tanh", norm=False, residual=False, init="delta_orthogonal"),  # Xiao et al. 2018, sigma_w=1
    "resnet_nobn_skipinit": Variant("elu", norm=False, residual=True, init="fan_in", branch_gain=True),  # De & Smith 2020
    "resnet_nobn_fixup": Variant("elu", norm=False, residual=True, init="fixup"),  # Zhang et al. 2019, adapted
}


def build_model(name: str, k: int, seeds: list[int] | int | None = None) -> DepthNet:
    """A named variant at depth k: ``build_model("resnet", 447, seeds=[0, 1])``."""
    if name not in VARIANTS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(VARIANTS)}")
    return DepthNet(k, seeds=seeds, **asdict(VARIANTS[name]))


def conv_layers(net: nn.Module) -> list[nn.Conv2d]:
    return [m for m in net.modules() if isinstance(m, nn.Conv2d)]


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
