"""The science around the trials: how sure a limit is (confidence; its calibration is search.calibration) and the original
study's figures it is compared with (reference). Mean field is ``deepdepth.meanfield``."""
