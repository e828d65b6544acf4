"""The original study's figures (SPEC section 6): what a run is compared against."""
REFERENCE = {
    # variant: (upper bound searched, reported limit k*)
    "cnn_tanh": (24, 3),
    "cnn_tanh_newinit": (120, 84),
    "cnn_elu": (150, 93),
    "cnn_elu_bn": (300, 156),
    "resnet": (450, 447),
    "cnn_tanh_bn_oldinit": (120, 96),
    "resnet_nobn": (24, 12),
}
NOTES = {
    "resnet": "the original search hit its upper bound (450): its true limit is unknown",
    "resnet_nobn": "the reference runs at 15 and 18 diverged (NaN); re-runs trained at 15 in 3 of 3 seeds",
    "cnn_tanh": "re-runs trained at k=6 in 2 of 3 seeds: the single-seed verdict was a coin flip",
    "cnn_elu_bn": "obtained under the notebook's frozen-BatchNorm quirk (protocol=original)",
    "cnn_tanh_bn_oldinit": "obtained under the notebook's frozen-BatchNorm quirk (protocol=original)",
}
