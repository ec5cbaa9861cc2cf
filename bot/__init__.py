"""dutybot runtime: app factory, channels, outbox, scheduler, CLI, config."""
