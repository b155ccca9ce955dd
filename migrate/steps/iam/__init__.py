"""Steps of the iam migration."""
