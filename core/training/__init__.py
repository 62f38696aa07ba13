"""Training: the loop (epochs, stages, selection on val, resume), one optimisation step, the
run directory's checks, and TensorBoard logging.
"""
