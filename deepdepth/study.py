"""The study's constants, one home for each (pure Python: every layer may import it)."""

WIDTHS = (4, 8, 16)  # channels per stage of the study's networks (``model.widths`` changes them)
