"""The block storage service layer: state transitions, quotas, scheduling requests."""
