"""The image service: Glance's Images API v2 (images, data, members, tags, import, tasks,
metadata definitions) over a small store interface."""
