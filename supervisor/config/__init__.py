"""The procfile: schema, loading and validation, schedules, paths and the reload plan. No asyncio, no logging."""
