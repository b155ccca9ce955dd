"""Steps of the cloudtrail migration."""
