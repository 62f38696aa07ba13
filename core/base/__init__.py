"""What every other room stands on, torch-free: errors that reach the user as one line, atomic
writes and the disk-space check behind them, cache paths, dataclass round trips, option
bounds, progress lines and the version.
"""
