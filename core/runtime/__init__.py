"""Where and how the work runs: the execution policy (device, precision, workers, chunk
sizes), distributed processes, and the attention-pooling kernels the alignments score with.
"""
