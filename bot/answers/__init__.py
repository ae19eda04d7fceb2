"""Composing an answer from retrieved items: language and script, fixed texts, rendering."""
