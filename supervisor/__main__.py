"""`python -m supervisor` is `supctl`."""

from .cli.main import run

run()
