"""Evaluation: ranking metrics, per-query outcomes and their bootstrap intervals, scoring a
checkpoint on a split, and the paired comparison of two models.
"""
