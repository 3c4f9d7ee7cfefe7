"""TorchScript modules on cpu or cuda. Importing this module imports torch; only do so on demand."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from service.models.backends.base import Backend, BackendUnavailable, Graph
from service.models.manifest import GraphSignature


def _load_scripted(path: Path, device: torch.device) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        # torch marks TorchScript deprecated; loading it is still what this backend is for.
        warnings.filterwarnings("ignore", r"`torch\.jit\.\w+` is deprecated", FutureWarning)
        module = torch.jit.load(str(path), map_location=device)
    return module.eval()


class TorchScriptGraph(Graph):
    def __init__(
        self,
        module: torch.jit.ScriptModule,
        device: torch.device,
        input_names: list[str],
        output_names: list[str],
    ) -> None:
        self.module = module
        self.torch_device = device
        self.device = str(device)
        self.input_names = input_names
        self.output_names = output_names

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tensors = [
            torch.from_numpy(inputs[name]).to(self.torch_device) for name in self.input_names
        ]
        with torch.inference_mode():
            result = self.module(*tensors)
        outputs = result if isinstance(result, tuple | list) else (result,)
        return {
            name: tensor.detach().cpu().numpy()
            for name, tensor in zip(self.output_names, outputs, strict=True)
        }


class TorchScriptBackend(Backend):
    name = "torchscript"
    file_suffix = ".pt"

    def __init__(self, device: str, *, require_cuda: bool = False, threads: int = 0) -> None:
        self.device = torch.device(device)
        if require_cuda and self.device.type != "cuda":
            raise BackendUnavailable(f"require_cuda is set but the torch device is {device!r}")
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailable(
                f"torch device {device!r} was asked for but torch sees no CUDA device"
            )
        if threads:
            torch.set_num_threads(threads)

    def load(self, path: Path, signature: GraphSignature) -> TorchScriptGraph:
        # A TorchScript file keeps no input names: the manifest's order is the call order.
        module = _load_scripted(path, self.device)
        return TorchScriptGraph(module, self.device, signature.inputs, signature.outputs)

    def describe(self) -> dict[str, object]:
        return {"backend": self.name, "device": str(self.device)}
