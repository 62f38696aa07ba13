"""Data and text: data-set records and their checks, image preprocessing, tokenizers, caption
and noun-phrase arrays, and the loaders that batch them for training and evaluation.
"""
