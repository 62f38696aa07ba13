"""The plugin system: the hook specifications a plugin implements and the registry that
finds components by name (built-ins register through the same hooks).
"""
