"""Read-back state of a gateway node → its GatewayStatus objects, bounded in size by sharding.

The seed's GatewayStatus lists every ready peer in one object; at 50 000 peers that is ~10 MB, far above
etcd's request limit (upstream PR #1283: "etcdserver: request is too large"). Design:

* Object 0 is named after the node and looks exactly like the seed's for small nodes: all
  ``readyGatewayNamespaces`` and the peers of shard 0.
* When the peers do not fit into ``budget`` bytes (default 400 KiB, well under the 512 KiB bound and
  etcd's 1.5 MiB), they are split over ``peerShardCount`` objects (a power of two, doubled until every
  object fits). PodEndpoint ``<ns>/<name>`` lives in shard ``crc32("<ns>/<name>") % peerShardCount``;
  shard ``i > 0`` is the object ``<node>.peers-<i>``. So "is this pod's peer ready on this node?" is one
  GET: read ``peerShardCount`` from the node's object, compute the shard, look for the entry
  (:func:`shard_of` and :func:`lookup` do exactly that). All objects carry the label
  ``egressgateway.kubernetes.azure.com/gateway-node=<node>`` and an ownerReference to the Node.
* Entries are sorted, so the same kernel state always renders the same objects: a converged node
  writes nothing (the daemon compares before it writes).
* If even the maximum shard count cannot hold everything (not reachable with Kubernetes name lengths
  below ~500 000 peers), the excess is dropped per shard and counted in ``status.omittedPeers``.

Callers: ``egw.daemon`` (publish) and tests/tools (lookup). Pure.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from egw.model import crds, names

NODE_LABEL = f"{crds.GROUP}/gateway-node"
DEFAULT_BUDGET = 400 * 1024
MAX_SHARDS = 4096


@dataclass(frozen=True, order=True)
class ReadyGateway:
    sgc: str  # "<ns>/<name>"
    netns: str


@dataclass(frozen=True, order=True)
class ReadyPeer:
    pod_endpoint: str  # "<ns>/<name>"
    netns: str
    public_key: str


@dataclass(frozen=True)
class StatusObject:
    """One GatewayStatus to exist: ``body`` is the full object to create/replace (minus resourceVersion)."""

    name: str
    body: dict[str, Any]

    @property
    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.body["spec"]
        return spec

    @property
    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.body["status"]
        return status

    def size(self) -> int:
        return len(json.dumps(self.body, separators=(",", ":")))


def shard_of(pod_endpoint: str, count: int) -> int:
    return zlib.crc32(pod_endpoint.encode()) % count if count > 1 else 0


def _gateway_entry(g: ReadyGateway) -> dict[str, str]:
    return {"netnsName": g.netns, "staticGatewayConfiguration": g.sgc}


def _peer_entry(p: ReadyPeer) -> dict[str, str]:
    return {"netnsName": p.netns, "podEndpoint": p.pod_endpoint, "publicKey": p.public_key}


def _entry_size(entry: Mapping[str, str]) -> int:
    return len(json.dumps(entry, separators=(",", ":"))) + 1


def plan_status(
    node: str,
    node_uid: str,
    namespace: str,
    gateways: Iterable[ReadyGateway],
    peers: Iterable[ReadyPeer],
    *,
    budget: int = DEFAULT_BUDGET,
) -> tuple[StatusObject, ...]:
    """The GatewayStatus objects for this node's read-back state, each at most ``budget`` bytes of JSON."""
    names.validate_node_name(node)
    names.validate_uid(node_uid, "node metadata.uid")
    gw_entries = [_gateway_entry(g) for g in sorted(set(gateways))]
    peer_list = sorted(set(peers))
    peer_entries = [(p.pod_endpoint, _peer_entry(p)) for p in peer_list]
    overhead = 1024 + len(node) * 4  # metadata, labels, ownerReference, status, field names
    base = overhead + sum(_entry_size(e) for e in gw_entries)

    count = 1
    while True:
        sizes = [overhead] * count
        sizes[0] = base
        for ref, entry in peer_entries:
            sizes[shard_of(ref, count)] += _entry_size(entry)
        if max(sizes) <= budget or count >= MAX_SHARDS:
            break
        count *= 2

    shards: list[list[dict[str, str]]] = [[] for _ in range(count)]
    used = [overhead] * count
    used[0] = base
    omitted = 0
    for ref, entry in peer_entries:
        i = shard_of(ref, count)
        size = _entry_size(entry)
        if used[i] + size > budget:
            omitted += 1
            continue
        used[i] += size
        shards[i].append(entry)

    owner = {"apiVersion": "v1", "kind": "Node", "name": node, "uid": node_uid}
    out: list[StatusObject] = []
    for i in range(count):
        name = names.status_shard_name(node, i)
        spec: dict[str, Any] = {}
        if i == 0:
            spec["readyGatewayNamespaces"] = gw_entries
        spec["readyPeerConfigurations"] = shards[i]
        if count > 1:
            spec["peerShardIndex"] = i
            spec["peerShardCount"] = count
        status: dict[str, Any] = {"readyPeers": len(shards[i])}
        if i == 0:
            status = {"readyGateways": len(gw_entries), "readyPeers": len(peer_list) - omitted}
            if omitted:
                status["omittedPeers"] = omitted
        body = {
            "apiVersion": crds.API_VERSION,
            "kind": crds.GATEWAY_STATUS.kind,
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {NODE_LABEL: node},
                "ownerReferences": [owner],
            },
            "spec": spec,
            "status": status,
        }
        out.append(StatusObject(name, body))
    return tuple(out)


def spec_equal(current: Mapping[str, Any], want: StatusObject) -> bool:
    """True when an existing object already has the wanted spec, labels and owner (no write needed)."""
    meta = current.get("metadata") or {}
    if (meta.get("labels") or {}).get(NODE_LABEL) != want.body["metadata"]["labels"][NODE_LABEL]:
        return False
    owners = meta.get("ownerReferences") or []
    if not any(o.get("uid") == want.body["metadata"]["ownerReferences"][0]["uid"] for o in owners):
        return False
    return bool(_normal(current.get("spec")) == _normal(want.spec))


def status_equal(current: Mapping[str, Any], want: StatusObject) -> bool:
    return bool(_normal(current.get("status")) == _normal(want.status))


def _normal(doc: Any) -> Any:
    """Drop empty lists/None so an omitted field equals an empty one (the API server prunes nothing here)."""
    if isinstance(doc, Mapping):
        return {k: _normal(v) for k, v in doc.items() if v not in (None, [], {})}
    if isinstance(doc, list):
        return [_normal(v) for v in doc]
    return doc


def lookup(objects: Mapping[str, Mapping[str, Any]], node: str, pod_endpoint: str) -> dict[str, Any] | None:
    """The ready-peer entry of ``pod_endpoint`` on ``node`` given GatewayStatus objects by name, or None."""
    head = objects.get(names.status_shard_name(node, 0))
    if head is None:
        return None
    count = int((head.get("spec") or {}).get("peerShardCount") or 1)
    shard = objects.get(names.status_shard_name(node, shard_of(pod_endpoint, count)))
    if shard is None:
        return None
    for entry in (shard.get("spec") or {}).get("readyPeerConfigurations") or ():
        if entry.get("podEndpoint") == pod_endpoint:
            return dict(entry)
    return None
