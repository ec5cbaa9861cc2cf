"""Operations without chat: each business operation is a function over one unit of work (one
transaction), an actor (a person, or an API client) and the clock, returning typed events. It
knows nothing of chats' message text or platforms; the doors (chat handlers, the intake API)
parse their input, call the operation and render its events (handlers/ops/notify.py turns them
into the notices every door sends alike).
"""
