"""Processes the bench starts next to the server under test."""
