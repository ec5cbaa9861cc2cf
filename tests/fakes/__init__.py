"""Local fake platform servers: they record and check what the bot sends them."""
