"""The master's HTTP server (GET /health, /status, /metrics, /events, /logs, the dashboard; POST with a token).

Only `hub` is imported by a master without [http]; aiohttp and prometheus-client load in `server` and `metrics`.
"""
