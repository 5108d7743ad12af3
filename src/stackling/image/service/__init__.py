"""Image service logic: records, listing, JSON patch, data streams, members, import, metadefs."""
