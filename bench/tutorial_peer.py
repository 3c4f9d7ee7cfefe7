"""The tutorial-style peer of bench/serve_rps.py: the FastAPI service a user would write in an
afternoon from the PyTorch and FastAPI tutorials. Eager PyTorch modules, PIL decode, torchvision
`ToTensor`, `.tolist()` and dicts through FastAPI's default JSON response, PNGs out as base64.

The encoder and decoder are the shipped MLP's layers (784-256-128-16 for `mnist-ae`), rebuilt as
plain `nn.Sequential` modules and loaded with its trained weights, so both sides of a comparison
run the same arithmetic. Needs the `train` extra (torch, torchvision).

    uvicorn bench.tutorial_peer:app          # PEER_MODEL_DIR=exported_models/mnist-ae
"""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import torch
from fastapi import FastAPI, Request
from PIL import Image
from pydantic import BaseModel
from torch import nn
from torchvision import transforms

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = Path(os.environ.get("PEER_MODEL_DIR", ROOT / "exported_models" / "mnist-ae"))


def mlp(weights: list[torch.Tensor], last: nn.Module) -> nn.Sequential:
    """Linear layers with ReLU between them, sized and filled from (weight, bias) pairs."""
    layers: list[nn.Module] = []
    for weight, bias in zip(weights[::2], weights[1::2], strict=True):
        linear = nn.Linear(weight.shape[1], weight.shape[0])
        linear.load_state_dict({"weight": weight, "bias": bias})
        layers += [linear, nn.ReLU()]
    layers[-1] = last
    return nn.Sequential(*layers).eval()


def load_weights(graph: str) -> list[torch.Tensor]:
    """The trained tensors of a shipped MLP graph, in layer order (the tutorial's `.pth`)."""
    return list(torch.jit.load(MODEL_DIR / f"{graph}.pt", map_location="cpu").state_dict().values())


if "PEER_TORCH_THREADS" in os.environ:  # unset: torch's default, as in a tutorial
    torch.set_num_threads(int(os.environ["PEER_TORCH_THREADS"]))

encoder = nn.Sequential(nn.Flatten(), mlp(load_weights("encoder"), nn.Identity())).eval()
decoder = mlp(load_weights("decoder"), nn.Sigmoid())
to_tensor = transforms.Compose(
    [transforms.Grayscale(), transforms.Resize((28, 28)), transforms.ToTensor()]
)
to_image = transforms.ToPILImage()

app = FastAPI(title="tutorial peer")


class Latents(BaseModel):
    latents: list[list[float]]


def png_base64(pixels: torch.Tensor) -> str:
    buffer = io.BytesIO()
    to_image(pixels.reshape(1, 28, 28)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def read_image(data: bytes) -> torch.Tensor:
    return to_tensor(Image.open(io.BytesIO(data))).unsqueeze(0)


@app.get("/readyz")
async def ready() -> dict:
    return {"ready": True}


@app.post("/encode")
async def encode(request: Request) -> dict:
    image = read_image(await request.body())
    with torch.no_grad():
        latent = encoder(image)
    return {"latents": latent.tolist()}


@app.post("/decode")
async def decode(body: Latents) -> dict:
    with torch.no_grad():
        images = decoder(torch.tensor(body.latents))
    return {"images": [png_base64(image) for image in images]}


@app.post("/reconstruct")
async def reconstruct(request: Request) -> dict:
    image = read_image(await request.body())
    with torch.no_grad():
        latent = encoder(image)
        recon = decoder(latent)
    mse = ((recon - image.flatten(1)) ** 2).mean(dim=1)
    return {
        "images": [png_base64(pixels) for pixels in recon],
        "latents": latent.tolist(),
        "mse": mse.tolist(),
    }
