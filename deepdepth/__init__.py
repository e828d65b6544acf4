"""deepdepth: how deep can a network be and still train, and what moves that limit?"""
__version__ = "0.1.0"

from .api import TrialResult, compose_config, run_trial  # noqa: E402
from .models import VARIANTS, DepthNet, build_model  # noqa: E402

__all__ = ["DepthNet", "VARIANTS", "build_model", "compose_config", "run_trial", "TrialResult", "__version__"]
