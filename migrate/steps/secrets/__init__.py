"""Steps of the secrets migration."""
