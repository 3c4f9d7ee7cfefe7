"""The yardstick of bench/encode_rps.py: a FastAPI endpoint that takes the same PNG upload as
/encode and answers a small JSON, with no model behind it."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

app = FastAPI()


@app.post("/encode")
async def encode(request: Request) -> Response:
    body = await request.body()
    return Response(b'{"bytes": %d}' % len(body), media_type="application/json")
