"""Serving ONNX never imports torch: a fresh process serves every route, then looks."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT

SCRIPT = textwrap.dedent(
    """
    import base64, io, sys, threading, time
    import httpx, numpy as np, uvicorn
    from PIL import Image
    from service.core.settings import Settings
    from service.app import create_app

    settings = Settings(
        model_dir=sys.argv[1], default_model="tiny-vae", backend="onnx", grpc_port=0
    )
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=0,
                                           log_level="warning"))
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(buffer, format="PNG")
    png = base64.b64encode(buffer.getvalue()).decode()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        while client.get("/readyz").status_code != 200:
            time.sleep(0.05)
        calls = [
            client.post("/encode", json={"images": [png]}),
            client.post("/reconstruct", json={"images": [png]}),
            client.post("/decode", json={"latents": [[0, 0, 0, 0]]}),
            client.get("/sample?n=2&seed=1"),
            client.get("/sample?n=2&seed=1&model=tiny-cvae", headers={"accept": "image/png"}),
            client.post("/interpolate", json={"start": {"image": png},
                                              "end": {"latent": [1, 1, 1, 1]}}),
            client.get("/models"),
            client.get("/metrics"),
        ]
    server.should_exit = True
    serving.join(timeout=30)  # its runners and sessions closed before the interpreter exits
    assert all(c.status_code == 200 for c in calls), [c.text for c in calls]
    print("torch imported:", "torch" in sys.modules)
    """
)


def test_serving_onnx_never_imports_torch(fixture_models):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(fixture_models)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "torch imported: False" in result.stdout
