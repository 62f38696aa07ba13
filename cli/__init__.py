"""The ``mia`` command line (click): thin commands over ``mia.core`` and ``mia.export``."""
