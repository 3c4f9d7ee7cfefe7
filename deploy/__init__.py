"""Deployment files, and the compose topology run on loopback without Docker (loopback.py)."""
