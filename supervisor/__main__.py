"""`python -m supervisor` is `supctl`."""

from .cli.main import main

raise SystemExit(main())
