"""DepthNet: the one builder behind every variant of the study: k convs in three stages."""
from __future__ import annotations

import torch
from torch import nn

from ..study import WIDTHS
from .blocks import ReplicaLinear, Stage, check_widths
from .init import check_init, initialise
from ..seeds import MAX_SEED, seed_error
from .variants import variant_kwargs

POOLED = 3 * 3  # 28 -> 14 -> 7 -> 3


def check_depth(k) -> int:
    """``k`` itself when it is a depth DepthNet can have (a positive multiple of 3), else ValueError."""
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0 or k % 3:
        raise ValueError(f"k must be a positive multiple of 3 (three stages of k/3 convolutions), got k={k!r}")
    return k


def _per_replica(value, replicas: int, what: str) -> list:
    if isinstance(value, (list, tuple)):
        if len(value) != replicas:
            raise ValueError(f"{what}: one per replica ({replicas}), got {len(value)}")
        return list(value)
    return [value] * replicas


class DepthNet(nn.Module):
    """k 3x3 convolutions in three stages of k/3 (``widths`` channels: the study's 4, 8, 16), each
    stage ending in 2x2 average pooling, then a linear layer (144 -> 10 at the study's widths).

    ``replicas=S`` packs S independent networks, one per seed in ``seeds``; the input is then
    (N, S, 28, 28) (each replica its own images) or (N, 1, 28, 28) (shared), and the output
    (N, S, 10). With one replica the output is (N, 10), as for any classifier.

    Per replica: ``init`` may be a list (one spec each, e.g. gains ``fan_in:0.5``, ``fan_in:0.7``)
    and ``depths`` a list of depths (multiples of 3, the deepest = k): replica s then uses the
    first depths[s]/3 blocks of each stage and passes the rest through unchanged (``Stage``).
    Each replica is initialised and trains exactly as its own ``DepthNet(depths[s], init=init[s],
    seeds=[seeds[s]])``.
    """

    def __init__(self, k: int, activation: str = "tanh", norm: bool = False, residual: bool = False,
                 init: str | list[str] = "fan_in", seeds: list[int] | int | None = None,
                 branch_gain: bool = False, depths: list[int] | None = None, widths=WIDTHS):
        super().__init__()
        check_depth(k)
        self.widths = check_widths(list(widths))
        if seeds is None:
            seeds = [int(torch.randint(MAX_SEED + 1, ()).item())]  # follows torch.manual_seed
        self.seeds = [int(seeds)] if isinstance(seeds, int) else [int(s) for s in seeds]
        bad = next((seed_error(s) for s in self.seeds if seed_error(s)), None)
        if bad:
            raise ValueError(bad)
        self.replicas = len(self.seeds)
        self.k = k
        self.activation, self.norm, self.residual, self.branch_gain = activation, bool(norm), bool(residual), branch_gain
        self.variant: str | None = None  # the conf/model name, where built from one (build_model)
        self.inits = [check_init(spec) for spec in _per_replica(init, self.replicas, "init")]
        self.depths = [check_depth(d) for d in _per_replica(k if depths is None else depths, self.replicas, "depths")]
        if max(self.depths) != k:
            raise ValueError(f"the deepest replica must have depth k={k}, got depths={self.depths}")
        stages, c_in = [], 1
        for width in self.widths:
            stages.append(Stage(c_in, width, k // 3, activation, norm, residual, self.replicas, branch_gain,
                                active=[d // 3 for d in self.depths]))
            c_in = width
        self.features = nn.Sequential(*stages)
        self.classifier = ReplicaLinear(self.widths[-1] * POOLED, 10, self.replicas)
        initialise(self, self.inits, self.seeds)

    def structure(self) -> str:
        """What shapes the computation, without the variant's name, init or seeds: the key of
        a compiled step (a new init or seed must not look like a new network to compile)."""
        skips = ("skips with a learnable branch gain (SkipInit)" if self.branch_gain
                 else "skips" if self.residual else "no skips")
        return (f"k={self.k}, widths={self.widths}, activation={self.activation}, "
                f"norm={'batchnorm' if self.norm else 'none'}, residual={self.residual} ({skips})"
                + (f", depths={self.depths}" if len(set(self.depths)) > 1 else "")
                + (f", replicas={self.replicas}" if self.replicas > 1 else ""))

    def extra_repr(self) -> str:
        """The variant, its settings and init, shown first by ``print(net)``."""
        inits = self.inits[0] if len(set(self.inits)) == 1 else self.inits
        return (f"variant={self.variant}, " if self.variant else "") + f"{self.structure()}, init={inits}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for images (N, 1 or S, 28, 28): (N, 10) for one replica, (N, S, 10) for S."""
        if x.shape[1] != self.replicas:
            x = x.expand(-1, self.replicas, -1, -1)
        h = self.features(x)
        logits = self.classifier(h.reshape(h.shape[0], self.replicas, -1))
        return logits if self.replicas > 1 else logits[:, 0]


def build_model(name: str, k: int, seeds: list[int] | int | None = None, depths: list[int] | None = None,
                widths=None) -> DepthNet:
    """A named variant (``conf/model/<name>.yaml``) at depth k: ``build_model("resnet", 447, seeds=[0, 1])``;
    ``widths=(8, 16, 32)`` doubles every stage's channels (default: the variant's).
    ``print(build_model("resnet", 12))`` shows the variant, norm, skips, init and widths."""
    kwargs = variant_kwargs(name)
    if widths is not None:
        kwargs["widths"] = widths
    net = DepthNet(k, seeds=seeds, depths=depths, **kwargs)
    net.variant = name
    return net


def conv_layers(net: nn.Module) -> list[nn.Conv2d]:
    """Every convolution of ``net``, in order (the k of a DepthNet)."""
    return [m for m in net.modules() if isinstance(m, nn.Conv2d)]


def count_parameters(net: nn.Module) -> int:
    """Trainable parameters of ``net`` (all replicas of a pack together)."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
