"""The network agent: fetches its host's desired state over the bus; the data plane realises it."""
