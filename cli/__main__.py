"""``python -m mia.cli`` (used by ``torchrun -m mia.cli train ...``)."""

from mia.cli.main import cli

cli(prog_name="mia")
