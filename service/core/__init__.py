"""What every part of the service shares and that knows nothing of HTTP or of models: settings,
protocol-neutral errors, media type names, metrics collectors, API-key configuration, the drain
flag, logging set-up.

May import: pydantic, pydantic-settings, prometheus-client; nothing else of service/.
"""
