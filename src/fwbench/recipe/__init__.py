"""The training recipe written once for every arm: inputs, augmentation, LR schedule, metrics,
divergence, clocks.
"""
