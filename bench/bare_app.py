"""The ceiling of bench/serve_rps.py: a FastAPI endpoint that reads the same upload as /encode
and answers a constant JSON, with no model behind it."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

app = FastAPI()


@app.get("/readyz")
async def ready() -> Response:
    return Response(b'{"ready": true}', media_type="application/json")


@app.post("/encode")
async def encode(request: Request) -> Response:
    await request.body()
    return Response(b'{"latents": [[0.0]]}', media_type="application/json")
