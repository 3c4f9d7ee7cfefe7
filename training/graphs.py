"""Write an autoencoder's encoder and decoder as separate ONNX and TorchScript graphs.

Both graphs get fixed, named signatures (DESIGN.md): the encoder takes `image` (+ `label`) and
returns `mean`, `logvar` or `latent`; the decoder takes `latent` (+ `label`) and returns
`image` and `logits`, the image before its final sigmoid: likelihoods and anomaly scores are
computed from the logits, which no CPU kernel rounds to exactly 0 or 1 as some round a
sigmoid's tails. The batch axis is dynamic in both formats.

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
    {
        "RandomNormal",
        "RandomNormalLike",
        "RandomUniform",
        "RandomUniformLike",
        "Multinomial",
        "Bernoulli",
    }
)
RANDOM_TORCH_OPS = (
    "rand",
    "normal",
    "bernoulli",
    "multinomial",
    "poisson",
    "exponential",
    "uniform",
)


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
    return Signature(("latent", "label") if conditional else ("latent",), ("image", "logits"))


def _answer(part: nn.Module, inputs: tuple[torch.Tensor, ...]):
    """An encoder answers its code; a decoder its image and the logits behind it."""
    if hasattr(part, "logits"):
        logits = part.logits(*inputs)
        return torch.sigmoid(logits), logits
    return part(*inputs)


class _Unconditional(nn.Module):
    """Gives a part of the model a one-input forward with a fixed arity."""

    def __init__(self, part: nn.Module):
        super().__init__()
        self.part = part

    def forward(self, x: torch.Tensor):
        return _answer(self.part, (x,))


class _Conditional(nn.Module):
    def __init__(self, part: nn.Module):
        super().__init__()
        self.part = part

    def forward(self, x: torch.Tensor, label: torch.Tensor):
        return _answer(self.part, (x, label))


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


def write_onnx(
    module: nn.Module, example: tuple[torch.Tensor, ...], signature: Signature, path: Path
) -> None:
    batch = torch.export.Dim("batch")
    dynamic_shapes = tuple({0: batch} for _ in example)
    try:
        with _quiet_exporters(), torch.no_grad():
            program = torch.onnx.export(
                module,
                example,
                None,
                input_names=list(signature.inputs),
                output_names=list(signature.outputs),
                dynamo=True,
                opset_version=ONNX_OPSET,
                dynamic_shapes=dynamic_shapes,
                external_data=False,
                verbose=False,
            )
    except Exception as error:  # torch.export raises many types; all mean "not exportable"
        raise GraphError(f"the ONNX exporter cannot export {path.stem}: {error}") from error
    program.save(str(path))
    strip_stack_traces_file(path)
    check_onnx(path, signature)


def strip_stack_traces_file(path: Path) -> None:
    model = onnx.load(str(path))
    strip_stack_traces(model)
    onnx.save(model, str(path))


STACK_TRACE_KEY = "pkg.torch.onnx.stack_trace"


def strip_stack_traces(model: onnx.ModelProto) -> None:
    """Drop the exporter's per-node Python stack traces: they name this machine's source and
    site-packages files by absolute path, and the graph does not need them."""
    for graph in _graphs(model):
        for node in graph.node:
            kept = [p for p in node.metadata_props if p.key != STACK_TRACE_KEY]
            del node.metadata_props[:]
            node.metadata_props.extend(kept)


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
    strip_debug_records(path)


def strip_debug_records(path: Path) -> None:
    """Rewrite a TorchScript archive without its `*.debug_pkl` records: they map each line to
    the absolute paths of this machine's source and site-packages files, and loading does not
    need them."""
    reader = torch._C.PyTorchFileReader(str(path))
    records = [
        (name, reader.get_record(name))
        for name in reader.get_all_records()
        if not name.endswith((".debug_pkl", "serialization_id"))
    ]
    del reader
    writer = torch._C.PyTorchFileWriter(str(path))
    for name, data in records:
        writer.write_record(name, data, len(data))
    writer.write_end_of_file()


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
    return [node.op_type for graph in _graphs(model) for node in graph.node]


def _graphs(model: onnx.ModelProto) -> Iterator:
    """The main graph, its subgraphs and the model's local functions."""
    pending = [model.graph, *model.functions]
    while pending:
        graph = pending.pop()
        yield graph
        for node in graph.node:
            for attribute in node.attribute:
                if attribute.HasField("g"):
                    pending.append(attribute.g)
                pending.extend(attribute.graphs)


def onnx_batch_dim(value: onnx.ValueInfoProto) -> int | None:
    """The fixed batch size of a graph input, or None when the axis is symbolic."""
    first = value.type.tensor_type.shape.dim[0]
    return first.dim_value if first.HasField("dim_value") else None


def check_torchscript(module: torch.jit.ScriptModule) -> None:
    kinds = {node.kind() for node in module.inlined_graph.nodes()}
    random_ops = sorted(
        k for k in kinds if k.startswith("aten::") and any(word in k for word in RANDOM_TORCH_OPS)
    )
    if random_ops:
        raise GraphError(f"the TorchScript graph contains random operators: {random_ops}")


def load_torchscript(path: Path) -> torch.jit.ScriptModule:
    with _quiet_exporters():
        return torch.jit.load(str(path), map_location="cpu").eval()


def torchscript_op_kinds(path: Path) -> set[str]:
    return {node.kind() for node in load_torchscript(path).inlined_graph.nodes()}
