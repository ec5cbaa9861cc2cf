"""The intake API (/api/v1): a door for monitoring systems and the 12345 platform onto the same
operations as the chat (handlers/ops). JSON in and out; every request carries a token."""
