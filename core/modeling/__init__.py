"""The model: the alignment contract and losses, feature containers, text pooling, model
assembly from registered components, checkpoints, pretrained starting points, and the
conformance checks a plugin author runs.
"""
