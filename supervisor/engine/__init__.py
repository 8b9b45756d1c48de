"""Running bots: spawn, one instance's lifecycle, a bot's instances, the fleet, events, the guardian."""
