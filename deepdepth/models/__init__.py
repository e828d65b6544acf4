"""The depth-network family: blocks, stages, the builder and its named variants."""
from .blocks import ConvBlock, ReplicaLinear, Stage
from .init import INIT_RULES, initialise
from .net import VARIANTS, DepthNet, Variant, build_model, check_depth, conv_layers, count_parameters

__all__ = ["ConvBlock", "Stage", "ReplicaLinear", "INIT_RULES", "initialise", "DepthNet", "Variant",
           "VARIANTS", "build_model", "check_depth", "conv_layers", "count_parameters"]
