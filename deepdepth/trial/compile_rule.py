"""When compiling the CPU training step pays for itself, as pure functions.

``torch.compile`` of the whole step (forward, backward, SGD) costs seconds to a minute before
the first fast step: ~1-8 s when inductor's on-disk cache already holds this step's code,
~10-95 s cold (2-core CPU, quiet). So ``fast=auto`` first times a few eager steps, then
compiles only when

    steps_left x eager_step_s x (1 - 1/speedup)  >  MARGIN x expected compile seconds

with a conservative ``speedup`` over the eager path the trial would otherwise take, and a
compile time that grows with the depth and depends on whether the cache is warm (constants
for a quiet 2-core machine; on a loaded one the timed eager steps slow down about as much as
the compile does). The speedups are near the low end of what was measured against *that* eager
path, which is channels-last except for one replica with BatchNorm (benchmarks/RESULTS.md,
2026-11-28, 2 threads, quiet, two runs): one replica without BatchNorm 1.0-1.25x at k=30 and
1.05-1.5x at k=3, taken as 1.05x; with BatchNorm the compiled step was 0-20% *slower* in the
eager step's layout, so 1.0x (never compiled by ``fast=auto``); 4 packed replicas 1.0-1.2x,
also taken as 1.05x, and 1.0x with BatchNorm. (The earlier 1.5-2.1x were against the plain
layout's eager step, and its 107 ms compiled k=30 step was not reproduced: 139-175 ms.) The
oneDNN convolutions, ~70% of a k=30 step, are what compiling cannot speed up. So
``fast=auto`` compiles only trials of thousands of steps, from a warm cache; a 3-epoch study
trial stays eager. ``fast=compile`` forces it.
"""
from __future__ import annotations

import getpass
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

# whole-step compile vs the eager step, by (BatchNorm, packed replicas): near the low end of what was measured
SPEEDUP = {(False, False): 1.05, (True, False): 1.0, (False, True): 1.05, (True, True): 1.0}
MARGIN = 1.25                          # the saving must beat the compile time by this much
COLD_S = (12.0, 1.0)                   # cold compile: seconds + seconds per block of one replica
WARM_S = (3.0, 0.1)                    # from a warm cache: seconds + seconds per block
MARKERS = "deepdepth-compiled"         # the markers' folder inside inductor's cache directory


@dataclass(frozen=True)
class Decision:
    """Whether to compile the CPU step, and the rule's reasoning in words (result.json's ``compile``)."""
    compile: bool
    reason: str


def expected_compile_seconds(blocks: int, warm: bool) -> float:
    """Seconds to compile the step of a network with ``blocks`` blocks per replica (packing
    widens the kernels, not the graph)."""
    base, per_block = WARM_S if warm else COLD_S
    return base + per_block * blocks


def decide(steps_left: int, eager_step_s: float, blocks: int, warm: bool, norm: bool,
           packed: bool = False) -> Decision:
    """Compile when the predicted saving over the steps left beats the expected compile time."""
    speedup = SPEEDUP[norm, packed]
    eager_s = steps_left * eager_step_s
    saving = eager_s * (1 - 1 / speedup)
    cost = expected_compile_seconds(blocks, warm)
    pays = saving > MARGIN * cost
    reason = (f"{steps_left} steps x {1000 * eager_step_s:.1f} ms = {eager_s:.1f} s eager; saving at "
              f"{speedup}x ~{saving:.1f} s {'>' if pays else '<='} {MARGIN} x {cost:.0f} s "
              f"{'warm' if warm else 'cold'}-cache compile")
    return Decision(pays, reason)


def inductor_cache_dir() -> Path:
    """Inductor's cache directory (``TORCHINDUCTOR_CACHE_DIR`` or its per-user default),
    found without creating it."""
    if os.environ.get("TORCHINDUCTOR_CACHE_DIR"):
        return Path(os.environ["TORCHINDUCTOR_CACHE_DIR"]).absolute()
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir
        return Path(default_cache_dir())
    except ImportError:  # another torch layout: inductor's usual default
        return Path(tempfile.gettempdir()) / f"torchinductor_{getpass.getuser()}"


def step_signature(*parts: object) -> str:
    """A short key for a step: a hash of everything that shapes its compiled code."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:24]


def cache_is_warm(cache_dir: Path, signature: str) -> bool:
    """Whether ``cache_dir`` holds this step's compiled code: our marker for the signature,
    next to a non-empty inductor FX-graph cache (a cleared cache loses both)."""
    graphs = cache_dir / "fxgraph"
    return (cache_dir / MARKERS / signature).is_file() and graphs.is_dir() and any(graphs.iterdir())


def mark_warm(cache_dir: Path, signature: str, note: str = "") -> None:
    """Record that the step with ``signature`` has been compiled into ``cache_dir``; a cache
    that cannot be written only means the next trial expects a cold compile."""
    try:
        (cache_dir / MARKERS).mkdir(parents=True, exist_ok=True)
        (cache_dir / MARKERS / signature).write_text(note + "\n")
    except OSError:
        pass
