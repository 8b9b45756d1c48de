"""Process states, backoff, units, frames and the exception tree: the pure core, stdlib only."""
