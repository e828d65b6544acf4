"""The depth-network family: blocks, stages, the builder and its named variants (conf/model/*.yaml)."""
from .blocks import ConvBlock, ReplicaLinear, Stage
from .init import INIT_RULES, InitRule, check_init, initialise, parse_init
from .memory import pack_memory_bytes
from .net import DepthNet, build_model, check_depth, conv_layers, count_parameters
from .variants import VARIANTS, Variant, conf_dir

__all__ = ["ConvBlock", "Stage", "ReplicaLinear", "INIT_RULES", "InitRule", "check_init", "parse_init",
           "initialise", "DepthNet", "Variant", "VARIANTS", "build_model", "check_depth", "conv_layers",
           "count_parameters", "conf_dir", "pack_memory_bytes"]
