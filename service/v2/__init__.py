"""The Open Inference Protocol (KServe V2) over HTTP under /v2: its wire codec, schemas, thin
routes and its `{"error"}` bodies.

May import: service.core, service.models, service.asgi, fastapi/starlette. Never service.rest
or service.runtime.
"""
