"""Write an autoencoder's encoder and decoder as separate ONNX and TorchScript graphs.

Both graphs get fixed, named signatures (DESIGN.md): the encoder takes `image` (+ `label`) and
returns `mean`, `logvar` or `latent`; the decoder takes `latent` (+ `label`) and returns
`image`. The batch axis is dynamic in both formats.

ONNX goes through the torch.export-based exporter (`dynamo=True`, the default since torch 2.9;
the TorchScript-based one is deprecated) at opset 18: the exporter's native opset, so no
version conversion runs, and every onnxruntime since 1.14 executes it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from torch import nn

ONNX_OPSET = 18
# Operators that draw random numbers. Dropout is not among them: the graphs are exported in
# eval mode, where it is the identity (and a traced one in training mode fails parity).
RANDOM_ONNX_OPS = frozenset(
    {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial",
     "Bernoulli"}
)
RANDOM_TORCH_OPS = ("rand", "normal", "bernoulli", "multinomial", "poisson", "exponential",
                    "uniform")


class ExportError(RuntimeError):
    """A model cannot be exported as asked; export wrote nothing."""


class GraphError(ExportError):
    """An exported graph is malformed or contains something it must not."""


@dataclass(frozen=True)
class Signature:
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def encoder_signature(variational: bool, conditional: bool) -> Signature:
    inputs = ("image", "label") if conditional else ("image",)
    outputs = ("mean", "logvar") if variational else ("latent",)
    return Signature(inputs, outputs)


def decoder_signature(conditional: bool) -> Signature:
    return Signature(("latent", "label") if conditional else ("latent",), ("image",))


class _Unconditional(nn.Module):
    """Gives a part of the model a one-input forward with a fixed arity."""

    def __init__(self, part: nn.Module):
        super().__init__()
        self.part = part

    def forward(self, x: torch.Tensor):
        return self.part(x)


class _Conditional(nn.Module):
    def __init__(self, part: nn.Module):
        super().__init__()
        self.part = part

    def forward(self, x: torch.Tensor, label: torch.Tensor):
        return self.part(x, label)


def graph_module(part: nn.Module, conditional: bool) -> nn.Module:
    """Wrap an encoder or decoder so its forward takes exactly the graph's inputs."""
    wrapper = _Conditional(part) if conditional else _Unconditional(part)
    return wrapper.eval()


@contextmanager
def _quiet_exporters() -> Iterator[None]:
    """Silence the deprecation notices torch prints for the calls made here, and only those."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning
        )
        # The dynamo exporter notes that inputs sharing the batch Dim share one axis name.
        warnings.filterwarnings("ignore", message=r"# The axis name: batch will not be used")
        yield


def write_onnx(module: nn.Module, example: tuple[torch.Tensor, ...], signature: Signature,
               path: Path) -> None:
    batch = torch.export.Dim("batch")
    dynamic_shapes = tuple({0: batch} for _ in example)
    try:
        with _quiet_exporters(), torch.no_grad():
            program = torch.onnx.export(
                module, example, None, input_names=list(signature.inputs),
                output_names=list(signature.outputs), dynamo=True, opset_version=ONNX_OPSET,
                dynamic_shapes=dynamic_shapes, external_data=False, verbose=False,
            )
    except Exception as error:  # torch.export raises many types; all mean "not exportable"
        raise GraphError(f"the ONNX exporter cannot export {path.stem}: {error}") from error
    program.save(str(path))
    check_onnx(path, signature)


def write_torchscript(module: nn.Module, example: tuple[torch.Tensor, ...], path: Path) -> None:
    # Tracing, not scripting: it accepts any model the ONNX exporter accepts. Parity runs at
    # other batch sizes than the example's, which catches a batch size baked into the trace.
    try:
        with _quiet_exporters(), torch.no_grad():
            traced = torch.jit.trace(module, example, check_trace=False)
    except Exception as error:
        raise GraphError(f"TorchScript cannot trace {path.stem}: {error}") from error
    check_torchscript(traced)
    with _quiet_exporters():
        torch.jit.save(traced, str(path))


def check_onnx(path: Path, signature: Signature) -> None:
    model = onnx.load(str(path))
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as error:
        raise GraphError(f"{path.name} fails the ONNX checker: {error}") from error
    names = (tuple(i.name for i in model.graph.input), tuple(o.name for o in model.graph.output))
    if names != (signature.inputs, signature.outputs):
        raise GraphError(f"{path.name} has inputs/outputs {names}, expected {signature}")
    random_ops = sorted(set(onnx_op_types(model)) & RANDOM_ONNX_OPS)
    if random_ops:
        raise GraphError(f"{path.name} contains random operators: {', '.join(random_ops)}")
    if any(onnx_batch_dim(value) is not None for value in model.graph.input):
        raise GraphError(f"{path.name} has a fixed batch size; the batch axis must be dynamic")


def onnx_op_types(model: onnx.ModelProto) -> list[str]:
    """Every operator type in the graph, its subgraphs and its local functions."""
    graphs = [model.graph, *model.functions]
    types: list[str] = []
    while graphs:
        graph = graphs.pop()
        for node in graph.node:
            types.append(node.op_type)
            for attribute in node.attribute:
                if attribute.HasField("g"):
                    graphs.append(attribute.g)
                graphs.extend(attribute.graphs)
    return types


def onnx_batch_dim(value: onnx.ValueInfoProto) -> int | None:
    """The fixed batch size of a graph input, or None when the axis is symbolic."""
    first = value.type.tensor_type.shape.dim[0]
    return first.dim_value if first.HasField("dim_value") else None


def check_torchscript(module: torch.jit.ScriptModule) -> None:
    kinds = {node.kind() for node in module.inlined_graph.nodes()}
    random_ops = sorted(k for k in kinds if k.startswith("aten::") and any(
        word in k for word in RANDOM_TORCH_OPS))
    if random_ops:
        raise GraphError(f"the TorchScript graph contains random operators: {random_ops}")


def load_torchscript(path: Path) -> torch.jit.ScriptModule:
    with _quiet_exporters():
        return torch.jit.load(str(path), map_location="cpu").eval()


def torchscript_op_kinds(path: Path) -> set[str]:
    return {node.kind() for node in load_torchscript(path).inlined_graph.nodes()}
