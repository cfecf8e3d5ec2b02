"""Clients for outside systems, one module each; none imports Flask or the models."""
