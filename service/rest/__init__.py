"""The domain REST front end (/encode ... /score, /models, probes, the web page): HTTP bodies
to arrays and back, and the OpenAPI document.

May import: service.core, service.models, service.asgi, fastapi/starlette. Never service.v2 or
service.runtime.
"""
