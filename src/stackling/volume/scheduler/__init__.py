"""The volume scheduler (cinder-scheduler): filters and weighers over the backends' pools."""

from stackling.volume.scheduler.manager import Pool, Request, select_pool

__all__ = ["Pool", "Request", "select_pool"]
