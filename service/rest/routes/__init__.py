"""One module per group of domain routes; each only translates (see service.rest)."""
