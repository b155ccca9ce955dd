"""Steps of the core migration."""
