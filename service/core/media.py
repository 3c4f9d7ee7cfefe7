"""The media types the service reads and writes, named once for every front end."""

from __future__ import annotations

JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
NPY = "application/x-npy"
PNG = "image/png"
JPEG = "image/jpeg"
IMAGES = "image/*"
MULTIPART = "multipart/form-data"
OCTETS = "application/octet-stream"
