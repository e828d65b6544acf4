"""Building blocks of the depth networks: a block, a stage, the per-replica classifier.

Every module takes ``replicas``: S independent networks are packed side by side as one
grouped network (grouped convolutions, per-replica BatchNorm channels, a per-replica
classifier), so several seeds train in one pass. With ``replicas=1`` each module is the
plain layer of the study's network.
"""
from __future__ import annotations

import torch
from torch import nn


ACTIVATIONS = {"tanh": nn.Tanh, "elu": nn.ELU, "relu": nn.ReLU}


def check_widths(widths) -> tuple[int, int, int]:
    """Three positive channel counts, one per stage (the study's are 4, 8, 16)."""
    ok = isinstance(widths, (list, tuple)) and len(widths) == 3 and all(
        isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths)
    if not ok:
        raise ValueError(f"model.widths must list three positive channel counts, one per stage "
                         f"(the study's: [4, 8, 16]), got model.widths={widths!r}")
    return tuple(widths)


def make_activation(name: str) -> nn.Module:
    """The activation module named ``name`` (tanh, elu, relu); ValueError naming the choices."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}") from None


class ConvBlock(nn.Module):
    """conv3x3 -> [BatchNorm] -> activation, plus ``x`` when ``skip`` (added after the activation)."""

    def __init__(self, c_in: int, c_out: int, activation: str, norm: bool, skip: bool,
                 replicas: int = 1, branch_gain: bool = False):
        super().__init__()
        if skip and c_in != c_out:
            raise ValueError("a skip needs equal input and output channels")
        self.c_in, self.c_out, self.replicas = c_in, c_out, replicas
        self.conv = nn.Conv2d(c_in * replicas, c_out * replicas, 3, padding=1, groups=replicas)
        self.norm = nn.BatchNorm2d(c_out * replicas) if norm else nn.Identity()
        self.act = make_activation(activation)
        self.skip = skip
        self.masked: frozenset[int] = frozenset()  # replicas that skip this block (set by Stage)
        # SkipInit / ReZero: a learnable scalar per replica on the residual branch, starting at 0.
        self.gain = nn.Parameter(torch.zeros(replicas)) if branch_gain else None

    def extra_repr(self) -> str:
        """Channels, whether it has a skip (and branch gain), replicas: what the children do not show."""
        return (f"{self.c_in} -> {self.c_out}, skip={self.skip}" + (", branch_gain=True" if self.gain is not None else "")
                + (f", replicas={self.replicas}" if self.replicas > 1 else "")
                + (f", masked replicas={sorted(self.masked)}" if self.masked else ""))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``act(norm(conv(x)))`` (times the branch gain), plus ``x`` when the block has a skip."""
        u = self.act(self.norm(self.conv(x)))
        if self.gain is not None:
            u = u * self.gain.repeat_interleave(self.c_out).view(1, -1, 1, 1)
        return u + x if self.skip else u


class Stage(nn.Sequential):
    """``depth`` blocks at one width, then 2x2 average pooling. Only the first block changes width.

    ``active[s]``: how many of the blocks replica s uses (default all): in a mixed-depth pack,
    block i >= active[s] passes replica s's channels through unchanged. It is selected with
    ``torch.where`` on both sides (the block sees a detached copy of its input on those channels,
    its output is discarded there), so a NaN in a masked block reaches neither the output nor any
    gradient, and the masked block's own gradients are exactly zero.
    """

    def __init__(self, c_in: int, c_out: int, depth: int, activation: str, norm: bool,
                 residual: bool, replicas: int = 1, branch_gain: bool = False,
                 active: list[int] | None = None):
        active = [depth] * replicas if active is None else list(active)
        if len(active) != replicas or not all(1 <= a <= depth for a in active):
            raise ValueError(f"each replica needs 1..{depth} active blocks, got {active}")
        blocks = [
            ConvBlock(c_in if i == 0 else c_out, c_out, activation, norm,
                      skip=residual and i > 0, replicas=replicas,
                      branch_gain=branch_gain and residual and i > 0)
            for i in range(depth)
        ]
        super().__init__(*blocks, nn.AvgPool2d(2, stride=2))
        for i, block in enumerate(blocks):
            block.masked = frozenset(s for s, a in enumerate(active) if i >= a)
            if block.masked:  # (1, S*C, 1, 1): True on the channels of replicas that skip this block
                mask = torch.tensor([s in block.masked for s in range(replicas)]).repeat_interleave(c_out)
                self.register_buffer(f"mask{i}", mask.view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The blocks (each replica its active ones), then the pooling."""
        *blocks, pool = self
        for i, block in enumerate(blocks):
            if block.masked:
                mask = getattr(self, f"mask{i}")
                x = torch.where(mask, x, block(torch.where(mask, x.detach(), x)))
            else:
                x = block(x)
        return pool(x)


class ReplicaLinear(nn.Module):
    """A fully connected layer per replica: (N, S, in) -> (N, S, out)."""

    def __init__(self, in_features: int, out_features: int, replicas: int = 1):
        super().__init__()
        self.in_features, self.out_features, self.replicas = in_features, out_features, replicas
        self.weight = nn.Parameter(torch.empty(replicas, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(replicas, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, S, in) -> (N, S, out), replica s through its own weight and bias."""
        return torch.einsum("nsi,soi->nso", x, self.weight) + self.bias

    def extra_repr(self) -> str:
        """Its sizes and replica count, as ``nn.Linear`` shows its own."""
        return f"in_features={self.in_features}, out_features={self.out_features}, replicas={self.replicas}"
