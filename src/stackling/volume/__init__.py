"""The block storage service (Cinder v3): API, scheduler, volume manager, backends, backups."""
