"""What the bot does: one router per feature, fed neutral inbound messages."""
