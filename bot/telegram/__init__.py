"""The Telegram front end: application wiring, handlers, formatting, Telegram texts, sends."""
