"""What a scheduler knows of every host for one request shape, kept between requests.

Between two requests only a host or two change (the one a claim added to, one a verify
found down), yet filtering and weighing re-read a thousand providers each time. A
:class:`Standing` keeps, per host of one host list and one request shape, whether the host
takes it (service up and enabled, resources fit) and its free amount of each weighed
resource class, and re-reads only the hosts whose provider ``version`` moved (every
:meth:`ProviderUsage.changed` bumps it). Collecting the passing hosts and weighing them then
runs in C (``itertools.compress``, ``map`` over ``operator`` functions), with the same
arithmetic, in the same order, as :func:`weighers.totals`.
"""

from __future__ import annotations

from collections import OrderedDict
from itertools import compress, repeat
from operator import add, attrgetter, mul, ne, not_, sub

from stackling.compute.scheduler.filters import HostState

_VERSION = attrgetter("version")
#: standings kept (a host list and a request shape each): a reload makes a new list
KEEP = 8
#: the weight of a host that does not take the request
NOT_PASSING = float("-inf")


class Standing:
    def __init__(self, hosts: list[HostState], key: object,
                 wanted: tuple[tuple[str, int], ...], classes: tuple[str, ...]) -> None:
        self.hosts = hosts
        self.key = key
        self.wanted = wanted
        n = len(hosts)
        self.ok = [False] * n
        self.free = {rc: [0] * n for rc in classes}
        self.providers = [h.provider for h in hosts]  # a host keeps its provider object
        self.versions = list(map(_VERSION, self.providers))
        for i in range(n):
            self._read(i)
        # the weights of every host (-inf where it does not pass) for one weighing, with
        # what they were worked out from, and the hosts read again since
        self._weighing: tuple[object, ...] | None = None
        self._weights: list[float] = []
        self._dirty: list[int] = []

    def _read(self, i: int) -> None:
        h = self.hosts[i]
        p = h.provider
        self.ok[i] = h.up and not h.disabled and p.fits_wanted(self.key, self.wanted)
        for rc, column in self.free.items():
            column[i] = p.free(rc)

    def refresh(self) -> None:
        """Re-read the hosts whose provider changed since the last look."""
        versions = list(map(_VERSION, self.providers))
        if versions != self.versions:
            for i in compress(range(len(versions)), map(ne, versions, self.versions)):
                self._read(i)
                self._dirty.append(i)
            self.versions = versions

    def count(self) -> int:
        return sum(self.ok)

    def passing(self) -> list[int]:
        """Indexes of the hosts that take the request, in order."""
        return list(compress(range(len(self.ok)), self.ok))

    def weights(self, weights: list[tuple[str, float]]) -> list[float]:
        """Every host's :func:`weighers.totals` weight among all passing hosts, -inf where
        it does not pass. While no weigher's lowest or highest passing score moves, only
        the hosts read again since the last weighing are weighed again (the others'
        weights would come out the same, bit for bit)."""
        active = []
        for rc, multiplier in weights:
            low, high = min(compress(self.free[rc], self.ok)), max(compress(self.free[rc],
                                                                           self.ok))
            if high != low:  # all equal: it adds nothing
                active.append((rc, low, multiplier / (high - low)))
        weighing = tuple(active)
        if weighing == self._weighing:
            for i in self._dirty:
                self._weights[i] = self._weigh(i, active)
        else:
            self._weights = self._weigh_all(active)
            self._weighing = weighing
        self._dirty = []
        return self._weights

    def _weigh(self, i: int, active: list[tuple[str, int, float]]) -> float:
        if not self.ok[i]:
            return NOT_PASSING
        out: float | None = None
        for rc, low, scale in active:
            part = (self.free[rc][i] - low) * scale
            out = part if out is None else out + part
        return out if out is not None else 0.0

    def _weigh_all(self, active: list[tuple[str, int, float]]) -> list[float]:
        n = len(self.ok)
        out: list[float] | None = None
        for rc, low, scale in active:
            part = list(map(mul, map(sub, self.free[rc], repeat(low)), repeat(scale)))
            out = part if out is None else list(map(add, out, part))
        if out is None:
            out = [0.0] * n
        for i in compress(range(n), map(not_, self.ok)):
            out[i] = NOT_PASSING
        return out



class Standings:
    """The few standings in use, by host list and request shape."""

    def __init__(self) -> None:
        self._kept: OrderedDict[tuple[int, object], Standing] = OrderedDict()

    def get(self, hosts: list[HostState], key: object, wanted: tuple[tuple[str, int], ...],
            classes: tuple[str, ...]) -> Standing:
        slot = (id(hosts), key)
        standing = self._kept.get(slot)
        if (standing is None or standing.hosts is not hosts
                or tuple(standing.free) != classes):
            standing = Standing(hosts, key, wanted, classes)
            self._kept[slot] = standing
            while len(self._kept) > KEEP:
                self._kept.popitem(last=False)
        else:
            standing.refresh()
        self._kept.move_to_end(slot)
        return standing
