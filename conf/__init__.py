"""Hydra's config groups. In the checkout they sit here, at the top of the repository; the wheel
ships them as the ``deepdepth.conf`` package (see pyproject.toml), found by ``deepdepth.models.conf_dir()``."""
