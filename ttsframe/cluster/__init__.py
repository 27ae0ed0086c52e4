"""Running backends on a Ray cluster (``[cluster] engine = "ray"``).

Nothing here imports Ray at module import; ``pool.py`` imports it when the pool starts,
so a server with the default local engine never needs the ``ray`` extra.
"""

from __future__ import annotations

from ttsframe.cluster.pool import RayCluster, RayWorkerPool
from ttsframe.core.config.settings import Settings
from ttsframe.core.interfaces.backend import Backend


def build_ray_workers(settings: Settings, backends: dict[str, Backend]
                      ) -> tuple[RayCluster, dict[str, RayWorkerPool]]:
    """One pool of replicas per backend, all on one cluster connection."""
    cluster = RayCluster(settings.cluster)
    return cluster, {name: RayWorkerPool(name, backend, settings, cluster)
                     for name, backend in backends.items()}
