"""What both HTTP front ends share: problem+json rendering and the exception handlers, the
middlewares (API keys, body size, metrics), the route class that serves the model routes without
FastAPI's per-request dependency solving, JSON responses and the app's data plane per request.

May import: service.core, service.models (the DataPlane a request reaches), fastapi/starlette.
Never service.rest, service.v2 or service.runtime.
"""
