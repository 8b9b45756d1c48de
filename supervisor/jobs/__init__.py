"""Scheduled tasks, cron restarts and file watching."""
