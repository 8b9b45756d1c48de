"""The control plane: wire protocol, client, server and the master's request handlers."""
