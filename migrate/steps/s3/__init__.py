"""Steps of the s3 migration."""
