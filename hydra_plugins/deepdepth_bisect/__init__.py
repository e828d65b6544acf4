"""Hydra sweeper plugin ``hydra/sweeper=bisect``: depth-limit search over a grid of settings.

A thin adapter: the search itself is ``deepdepth.search.DepthSearch`` (no Hydra inside).
"""
