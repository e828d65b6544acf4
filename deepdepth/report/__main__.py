"""Entry point: the one place that picks matplotlib's backend (files only, no display)."""
import matplotlib

matplotlib.use("Agg")

from .cli import main  # noqa: E402

main()
