"""Backup stores (cinder-backup's drivers), selected from an explicit table."""
