"""Steps of the kms migration."""
