"""``mia export onnx|torchscript``."""

from __future__ import annotations

import click

from mia.cli.params import Number
from mia.core.settings.config import DEVICES
from mia.core.data.records import SPLITS


def _common(command):
    options = [
        click.option("--checkpoint", required=True, help="best.pt or last.pt of a run"),
        click.option("--out", required=True, help="directory to write (graphs + manifest.json)"),
        click.option("--check-data", help="data set spec: also run the full evaluation through the export and compare"),
        click.option("--check-split", type=click.Choice(SPLITS), help="with --check-data: the split (default test)"),
        click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
                     help="where the recall check runs"),
        click.option("--force", is_flag=True, help="replace --out if it exists"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _report(manifest: dict, out: str) -> None:
    files = ", ".join(manifest["files"])
    click.echo(f"wrote {out}: {files}, manifest.json")
    check = manifest["verification"].get("recall_check")
    if check:
        click.echo(f"recall check passed on {check['split']}: largest gap {check['max_gap']:.3f} points")


@click.group(name="export")
def export():
    """Export a trained model for deployment."""


@export.command(name="onnx")
@_common
@click.option("--opset", type=Number(int, minimum=13, maximum=23), default=18, show_default=True,
              help="ONNX opset version")
@click.option("--exporter", type=click.Choice(["dynamo", "torchscript"]), default="dynamo", show_default=True,
              help="torch.onnx exporter: dynamo (torch.export) or the older TorchScript-based one")
def export_onnx(checkpoint, out, check_data, check_split, device, force, opset, exporter):
    """Image and text encoders, gallery preparation and scorer as ONNX graphs, verified against PyTorch."""
    from mia.export.exporting import export_model

    manifest = export_model(checkpoint, out, "onnx", opset, exporter, check_data, force, device,
                            log=lambda m: click.echo(m, err=True), check_split=check_split)
    _report(manifest, out)


@export.command(name="torchscript")
@_common
def export_torchscript(checkpoint, out, check_data, check_split, device, force):
    """The same four graphs as TorchScript files (torch.jit.load, no mia needed)."""
    from mia.export.exporting import export_model

    manifest = export_model(checkpoint, out, "torchscript", check_data=check_data, force=force, device=device,
                            log=lambda m: click.echo(m, err=True), check_split=check_split)
    _report(manifest, out)
