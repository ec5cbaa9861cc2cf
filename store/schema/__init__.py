"""The tables, by subject; store/models.py gathers them (import models from there)."""
