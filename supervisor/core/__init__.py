"""Process states, backoff and units: the pure core, stdlib only."""
