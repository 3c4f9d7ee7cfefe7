"""The data plane: models loaded, verified and run, with no HTTP in it.

May import: service.core, numpy, pydantic, the runtimes (onnxruntime; torch only in
backends/torchscript.py). Never fastapi, starlette or uvicorn (tests/service/test_layout.py).
"""
