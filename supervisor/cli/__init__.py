"""The `supctl` command: parse arguments, ask the master, print."""
