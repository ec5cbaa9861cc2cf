"""Channels: one module per platform, each only translating between its wire format and the
neutral messages in domain.messages."""
