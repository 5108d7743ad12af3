"""The explicit table of services ``stackling up`` runs besides identity (in start order)."""

from __future__ import annotations

from stackling.cli.component import Component
from stackling.cli.compute import ComputeComponent
from stackling.cli.console import ConsoleComponent
from stackling.cli.image import ImageComponent
from stackling.cli.metadata import MetadataComponent
from stackling.cli.network import NetworkComponent
from stackling.cli.volume import VolumeComponent

COMPONENTS: list[type[Component]] = [ImageComponent, NetworkComponent, ComputeComponent,
                                     VolumeComponent, MetadataComponent, ConsoleComponent]
