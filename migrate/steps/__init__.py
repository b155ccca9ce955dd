"""Step types. Every module here is imported by the registry; each registers its steps."""
