"""Steps of the rds migration."""
