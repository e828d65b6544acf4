"""How much memory a (packed) DepthNet needs to train: estimated before building it, so a pack
that cannot fit on a device can be refused (or split) up front."""
from __future__ import annotations

from ..study import WIDTHS
from .net import POOLED, check_depth

FLOAT32 = 4
SAVES_INPUT = {"elu"}  # autograd keeps the activation's input (tanh, relu keep their output)


def pack_memory_bytes(k: int, replicas: int = 1, batch: int = 128, norm: bool = False, *,
                      activation: str = "tanh", residual: bool = False, branch_gain: bool = False,
                      depths: list[int] | None = None, image: int = 28, widths=WIDTHS) -> int:
    """Estimated bytes, float32, of training DepthNet(k, ..., replicas, depths) at ``batch`` images
    per replica: parameters three times (weights, gradients, SGD momentum) plus the activations
    autograd keeps for the backward pass. Pure arithmetic mirroring the blocks:

    per block, in units of (batch x replicas x C x H x W) floats: the tensor handed on (the next
    conv's or pool's saved input) 1, + 1 with BatchNorm (its input), + 1 where the activation keeps
    its input (ELU) as well, + 1 for a SkipInit gain (the multiply keeps the branch); a block that a
    mixed-depth pack masks for some replica keeps its ``torch.where`` input copy and the
    activation's tensor: 2 + BatchNorm + gain. Plus the input images and each pool's output.
    Transient gradient buffers of the backward pass (about two activations at a time) and the
    allocator's rounding are not counted: leave headroom.
    """
    check_depth(k)
    depths = [k] * replicas if depths is None else list(depths)
    n_blocks = k // 3
    shallowest = min(depths) // 3
    floats, params, c_in, side = batch * image * image, 0, 1, image  # the input images (one channel)
    for width in widths:
        plane = batch * width * side * side
        for i in range(n_blocks):
            skip = residual and i > 0
            gain = branch_gain and skip
            maskable = i >= shallowest
            per = (2 if maskable else 1 + (activation in SAVES_INPUT)) + norm + gain
            floats += per * plane
            params += 9 * (c_in if i == 0 else width) * width + width + 2 * width * norm + gain
        side //= 2
        floats += batch * width * side * side  # the pool's output, the next stage's input
        c_in = width
    params += widths[-1] * POOLED * 10 + 10
    return FLOAT32 * replicas * (floats + 3 * params)
