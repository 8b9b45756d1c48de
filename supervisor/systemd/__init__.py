"""Running under systemd: the unit file, its options and sd_notify."""
