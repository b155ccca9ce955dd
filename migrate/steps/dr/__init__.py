"""``dr.restore_test``: disaster-recovery drills with measured RTO and RPO."""
