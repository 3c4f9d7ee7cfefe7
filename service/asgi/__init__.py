"""What both HTTP front ends share: problem+json rendering, the middlewares (API keys, body
size, metrics) and the route class that serves the model routes without FastAPI's
per-request dependency solving.

May import: service.core, fastapi/starlette. Never service.models, service.rest or service.v2.
"""
