"""Example supctl plugins; see docs/plugins.md."""
