"""Experiments over many runs: the ablation grid, its reports with intervals and verdicts,
and the plots they draw.
"""
