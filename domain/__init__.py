"""Domain types below every layer: the vocabulary (grades, statuses, roles, scopes), the config
models, the directory of the organisation and the neutral chat message. Imports nothing from bot/,
handlers/ or store/."""
