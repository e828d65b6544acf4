"""Mean-field signal propagation (Schoenholz et al. 2017; Xiao et al. 2018) for the plain CNNs.

Predicts, from a variant's activation and initialisation alone, how deep it can be and still
train: the fixed point q* of the pre-activation variance map, the slope chi_1 of the
correlation map at c=1, the depth scale xi and the trainable depth: the largest k over whose
convs (width-changing ones included) a perturbation decays by at most 6 e-folds, 6 xi for a
uniform net. Pure numpy (the
weight std comes from the init rules' records, ``deepdepth.models.init``, imported only when a variant
is named).

In a researcher's terms: ``predict("tanh", sigma_w2=1.0)`` (sigma_w^2 = 9 c_in Var(w) of every
conv, with ``sigma_b2`` for the biases) gives the same as the init spec form
``predict("tanh", "fan_in:1.0")``; ``stage("tanh", 0.7)`` is one uniform layer's fixed point,
phase and depth scale.

Modules: ``gaussian`` (the integrals), ``maps`` (one layer's maps and ``stage``), ``network``
(a whole net), ``table`` (the report's table).
"""
from .gaussian import ACTIVATIONS, QUADRATURE_NOISE, gauss, gauss2
from .maps import (CRITICAL_TOL, TRAINABLE_XI, Stage, chi_1, correlation_fixed_point, fixed_point, stage,
                   variance_map)
from .network import Prediction, predict, predict_variant
from .table import mean_field_markdown, mean_field_table

__all__ = ["ACTIVATIONS", "CRITICAL_TOL", "QUADRATURE_NOISE", "TRAINABLE_XI", "Prediction", "Stage", "chi_1",
           "correlation_fixed_point", "fixed_point", "gauss", "gauss2", "mean_field_markdown", "mean_field_table",
           "predict", "predict_variant", "stage", "variance_map"]
