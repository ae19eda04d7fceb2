"""What the bot remembers: one storage interface and its implementations."""
