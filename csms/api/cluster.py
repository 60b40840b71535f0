"""The cluster over the management API: its nodes, their leases, the jobs each leads and how
many chargers each holds. On SQLite it is one node."""

from __future__ import annotations

from collections import Counter

from aiohttp import web
from pydantic import Field

from csms.cluster.view import ClusterView
from httpapi.models import ApiModel
from httpapi.routing import Api
from storage.nodes import Node


class NodeOut(ApiModel):
    id: str
    alive: bool = Field(description="Its lease has not run out")
    started_at: str
    renewed_at: str
    expires_at: str = Field(description="When its lease runs out unless renewed")
    jobs: list[str] = Field(description="Cluster-wide jobs it runs: deadlines, reconcile, ...")
    chargers: int = Field(description="Chargers connected to it")


class ClusterOut(ApiModel):
    node: str = Field(description="The node that answered")
    backend: str = Field(description="sqlite (one node) or postgresql")
    nodes: list[NodeOut]


class ClusterRoutes:
    def __init__(self, node: Node, view: ClusterView, backend: str) -> None:
        self._node = node
        self._view = view
        self._backend = backend

    def register(self, api: Api) -> None:
        api.add("GET", "/api/cluster", self.get_cluster, tag="cluster",
                summary="The nodes, their leases, jobs and chargers",
                response=ClusterOut)  # fmt: skip

    async def get_cluster(self, request: web.Request) -> ClusterOut:
        chargers = Counter(self._view.holders().values())
        return ClusterOut(
            node=self._node.id,
            backend=self._backend,
            nodes=[
                NodeOut(
                    id=member.id,
                    alive=member.alive,
                    started_at=member.started_at,
                    renewed_at=member.renewed_at,
                    expires_at=member.expires_at,
                    jobs=list(member.jobs),
                    chargers=chargers.get(member.id, 0),
                )
                for member in await self._node.members()
            ],
        )
