"""The master's HTTP server (GET /health, /status, /metrics, /events, /logs, the dashboard; POST with a token).

Only `hub` is imported by a master without [http]; h11 and prometheus-client load in `wire` and `metrics`.
"""
