"""The process around the app: uvicorn with limits against slow clients, the graceful drain,
several workers on one socket.

May import: service.core, service.asgi (problem bodies), uvicorn, and service.app only by its
import string. Nothing of service.models, service.rest or service.v2.
"""
