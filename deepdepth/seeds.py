"""Which seed a sweep's trial trains with: the replica index at a depth mapped to a seed.

``independent`` (the default) derives each trial's seed from the sweep seed, the depth and the
replica index, so trials at neighbouring depths share no draws and a k50 fit may treat them as
independent. ``shared`` is the original study's scheme: seeds seed .. seed+S-1 at every depth,
so a seed that fails at one depth tends to fail at the next (its draws are the same up to the
layers added); kept to reproduce the original search exactly.

Every seed lies in [0, MAX_SEED]: torch's CPU generator and Lightning's ``seed_everything`` use
32 bits, so 2**32 would train the same network as 0.
"""
from __future__ import annotations

import hashlib

SEED_SCHEMES = ("independent", "shared")
MAX_SEED = 2**32 - 1


def derived_seed(seed: int, k: int, index: int) -> int:
    """A 32-bit seed for replica ``index`` at depth ``k`` of a sweep seeded ``seed`` (BLAKE2b of
    the three numbers: stable across Python versions and machines, unlike ``hash``)."""
    digest = hashlib.blake2b(f"deepdepth:{seed}:{k}:{index}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")


def trial_seed(scheme: str, seed: int, k: int, index: int) -> int:
    """The seed replica ``index`` trains at depth ``k`` under ``scheme``."""
    if scheme == "shared":
        return seed + index
    if scheme == "independent":
        return derived_seed(seed, k, index)
    raise ValueError(f"unknown seed scheme {scheme!r}; choose one of {list(SEED_SCHEMES)}")


def seed_error(value, name: str = "seed") -> str | None:
    """One line saying why ``value`` is not a usable seed (None: it is)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        return f"{name} must be an integer in [0, 2**32-1] (torch seeds with 32 bits), got {name}={value!r}"
    return None
