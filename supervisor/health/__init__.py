"""The plugin host: loading plugins, running health checks and recoveries, event hooks, containment."""
