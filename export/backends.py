"""Writing and running the graphs with each backend (ONNX via ONNX Runtime, TorchScript).

Both expose the same ``run(output_names, feeds) -> list[np.ndarray]`` call as an ONNX
Runtime session, so verification, the recall check and :class:`Retriever` treat them alike.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from mia.core.base.errors import MiaError
from mia.export.graphs import GraphIO

BACKENDS = {"onnx": ".onnx", "torchscript": ".pt"}
EXPORTERS = ("dynamo", "torchscript")


@contextlib.contextmanager
def _quiet():
    """The exporters print progress and warnings meant for their developers, not our users."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _dynamic_shapes(graph: torch.nn.Module, graph_io: GraphIO):
    """torch.export's form of the dynamic axes: one shared ``Dim`` per symbolic name, and
    ``NAME_xK`` as K times ``NAME`` (a prepared gallery lays K stripes per image out as columns)."""
    dims: dict[str, torch.export.Dim] = {}

    def dim(symbol: str):
        if symbol not in dims:
            base, _, factor = symbol.rpartition("_x")
            dims[symbol] = dim(base) * int(factor) if base and factor.isdigit() else torch.export.Dim(symbol)
        return dims[symbol]

    specs = [{axis: dim(symbol) for axis, symbol in graph_io.dynamic[name].items()} for name in graph_io.inputs]
    takes_varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in inspect.signature(graph.forward).parameters.values())
    return (tuple(specs),) if takes_varargs else tuple(specs)


def write_onnx(graph: torch.nn.Module, args: tuple, path: Path, graph_io: GraphIO, opset: int, exporter: str) -> None:
    names = graph_io.inputs + graph_io.outputs
    if exporter == "dynamo":
        shapes = {"dynamic_shapes": _dynamic_shapes(graph, graph_io)}
    else:
        shapes = {"dynamic_axes": {n: graph_io.dynamic[n] for n in names if n in graph_io.dynamic}}
    try:
        with _quiet():
            torch.onnx.export(
                graph, args, str(path), input_names=list(graph_io.inputs), output_names=list(graph_io.outputs),
                opset_version=opset, dynamo=exporter == "dynamo", external_data=False, **shapes,
            )
    except Exception as exc:  # exporter failures are long; the first line says what broke
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MiaError(f"ONNX export of {path.stem} failed ({exporter}, opset {opset}): {first[:300]}") from None
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as exc:
        raise MiaError(f"{path.name}: onnx.checker rejected the exported graph: {str(exc).splitlines()[0]}") from None


def write_torchscript(graph: torch.nn.Module, args: tuple, path: Path) -> None:
    """Serialised in memory and written by Python: saved to a path, a full disk aborts the
    whole process from torch's C++ writer; written by Python it is an ENOSPC to report."""
    with _quiet(), torch.no_grad():
        traced = torch.jit.trace(graph, args, check_trace=False)
    path.write_bytes(traced.save_to_buffer())


def onnx_signature(path: Path) -> dict:
    """Input/output names, shapes (symbolic names for dynamic axes) and types, from the file."""
    model = onnx.load(str(path), load_external_data=False)

    def describe(values):
        described = []
        for value in values:
            tensor = value.type.tensor_type
            shape = [d.dim_param or d.dim_value for d in tensor.shape.dim]
            described.append({"name": value.name, "shape": shape,
                              "dtype": onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name})
        return described

    return {"inputs": describe(model.graph.input), "outputs": describe(model.graph.output)}


def torch_signature(graph_io: GraphIO, args: tuple, outputs: tuple) -> dict:
    def describe(names, tensors):
        return [{"name": n, "shape": [graph_io.dynamic.get(n, {}).get(axis, size) for axis, size in enumerate(t.shape)],
                 "dtype": str(t.dtype).removeprefix("torch.")} for n, t in zip(names, tensors)]

    return {"inputs": describe(graph_io.inputs, args), "outputs": describe(graph_io.outputs, outputs)}


class TorchScriptSession:
    """A TorchScript graph behind ONNX Runtime's ``run`` signature."""

    def __init__(self, path: Path, inputs: list[str], outputs: list[str]):
        with _quiet():  # torch.jit.load warns that TorchScript is deprecated; the files still load
            self.module = torch.jit.load(str(path), map_location="cpu")
        self.inputs, self.outputs = inputs, outputs

    def run(self, output_names, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with torch.no_grad():
            result = self.module(*(torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in self.inputs))
        result = result if isinstance(result, (tuple, list)) else (result,)
        return [r.numpy() for r in result]
