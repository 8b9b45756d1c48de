"""The master: `root` is the one composition root that wires every part together; `daemon` puts it in the
background and keeps its pidfile and status.json. Empty on purpose, so the CLI can read status.json without
loading the master."""
