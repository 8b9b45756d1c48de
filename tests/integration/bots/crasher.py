"""Exits at once with the given code (default 1), after saying so on stderr."""
import sys

code = int(sys.argv[1]) if len(sys.argv) > 1 else 1
print(f"crashing with {code}", file=sys.stderr, flush=True)
sys.exit(code)
