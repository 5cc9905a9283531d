"""The gateway daemon's control loop: informers → one level-triggered queue → per-gateway reconcile.

Keys in the queue: ``gw:<ns>/<name>`` (one StaticGatewayConfiguration), ``gc`` (remove namespaces of
gateways that are gone) and ``status`` (publish GatewayStatus). Every reconcile of a gateway computes
the gateway's *whole* desired state from the caches (SGC, GatewayVMConfiguration, PodEndpoints, Pods,
the key Secret, the Node) and applies only the difference (``egw.daemon.kernel``). Events are coalesced:
an event schedules its gateway after ``batch_window`` seconds and further events in that window merge,
so thousands of PodEndpoint events become a few batched WireGuard syncs. A periodic resync re-runs
everything (repairs drift; writes nothing when nothing drifted).

Faults: an unreachable API server leaves the datapath alone (the caches keep their last state; nothing
is torn down, GC only runs on fresh, complete lists); a failing gateway is retried with backoff and does
not stop the others; a dead wireguard-go is noticed by the supervisor and its gateway rebuilt.

Callers: ``egw.daemon.main``. All kernel work happens on the single worker thread.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from egw.daemon import logs
from egw.daemon.kernel import GatewayKernel, GatewayObservation, KernelError
from egw.daemon.metrics import Metrics
from egw.k8s import client as k8s
from egw.k8s import errors as k8s_errors
from egw.k8s.events import WARNING, EventRecorder
from egw.k8s.informer import Informer
from egw.k8s.queue import WorkQueue
from egw.model import crds, names
from egw.model.errors import ValidationError
from egw.plan import gateway as plan_gateway
from egw.plan import peers as plan_peers
from egw.plan import status as plan_status

log = logging.getLogger("egw.daemon")

GC_KEY = "gc"
STATUS_KEY = "status"


@dataclass
class Settings:
    node_name: str
    namespace: str
    node_interface: str = "eth0"
    batch_window: float = 0.2
    resync_period: float = 60.0
    status_interval: float = 1.0
    verify_pod_ips: bool = True
    status_budget: int = plan_status.DEFAULT_BUDGET


@dataclass
class GatewayState:
    plan: plan_gateway.GatewayPlan
    peers: plan_peers.PeersPlan
    observed: GatewayObservation
    applied_at: float = field(default_factory=time.monotonic)


def _strip_pod(obj: dict[str, Any]) -> dict[str, Any]:
    """Pods are cached only for their IPs (memory: a cluster has many pods, we need two fields)."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    return {
        "metadata": {k: meta.get(k) for k in ("name", "namespace", "uid", "resourceVersion")},
        "status": {"podIP": status.get("podIP"), "podIPs": status.get("podIPs")},
    }


class Reconciler:
    def __init__(
        self, settings: Settings, api: k8s.Client, kernel: GatewayKernel, metrics: Metrics | None = None
    ) -> None:
        names.validate_node_name(settings.node_name, "--node-name")
        self.s = settings
        self.api = api
        self.kernel = kernel
        self.metrics = metrics or Metrics()
        self.queue: WorkQueue[str] = WorkQueue(base_delay=0.5, max_delay=60.0, name="daemon")
        self.events = EventRecorder(api, "egw-daemon", settings.node_name)
        self.sgcs = Informer(api, k8s.STATIC_GATEWAY_CONFIGURATIONS, self._on_sgc, name="sgc")
        self.vmcs = Informer(api, k8s.GATEWAY_VM_CONFIGURATIONS, self._on_sgc, name="vmc")
        self.pes = Informer(api, k8s.POD_ENDPOINTS, self._on_pe, name="podendpoints")
        self.pods: Informer | None = (
            Informer(api, k8s.PODS, self._on_pod, name="pods", transform=_strip_pod)
            if settings.verify_pod_ips
            else None
        )
        self.states: dict[str, GatewayState] = {}
        self.ready_uids: set[str] = set()
        self.node: plan_gateway.NodeFacts | None = None
        self.node_uid: str | None = None
        self._keys: dict[str, bytes] = {}  # SGC uid -> private key (last good; survives API outages)
        self._empty_gc_seen = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._rejected: dict[str, dict[str, str]] = {}  # gateway -> PodEndpoint -> reason already reported

    # ------------------------------------------------------------------------------- events

    def _enqueue_gw(self, key: str) -> None:
        self.queue.add_after("gw:" + key, self.s.batch_window)

    def _on_sgc(self, etype: str, key: str, old: Any, new: Any) -> None:
        self._enqueue_gw(key)
        if etype == "DELETED":
            self.queue.add_after(GC_KEY, self.s.batch_window)

    def _on_pe(self, etype: str, key: str, old: Any, new: Any) -> None:
        for obj in (old, new):
            if obj:
                ns = (obj.get("metadata") or {}).get("namespace")
                sgc = (obj.get("spec") or {}).get("staticGatewayConfiguration")
                if ns and isinstance(sgc, str) and sgc:
                    self._enqueue_gw(f"{ns}/{sgc}")

    def _on_pod(self, etype: str, key: str, old: Any, new: Any) -> None:
        pe = self.pes.get(key)
        if pe is not None and etype != "SYNC":
            self._on_pe(etype, key, None, pe)

    # ---------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        for inf in self._informers():
            inf.start()
        for target, name in ((self._worker, "worker"), (self._resync_loop, "resync"), (self._supervise, "supervisor")):
            t = threading.Thread(target=target, name=f"daemon-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def _informers(self) -> list[Informer]:
        return [i for i in (self.sgcs, self.vmcs, self.pes, self.pods) if i is not None]

    def synced(self) -> bool:
        return all(i.has_synced for i in self._informers())

    def stop(self) -> None:
        self._stop.set()
        self.queue.shutdown()
        for inf in self._informers():
            inf.stop(timeout=2)
        for t in self._threads:
            t.join(timeout=10)

    def _resync_loop(self) -> None:
        first = True
        while not self._stop.is_set():
            if first:
                # wait for the first complete lists, so the first pass sees everything (no partial GC)
                while not self._stop.is_set() and not self.synced():
                    self._stop.wait(0.1)
                first = False
            self.resync()
            self._stop.wait(self.s.resync_period)

    def resync(self) -> None:
        """Everything once: every gateway, GC, status (also what a periodic tick does)."""
        self._refresh_node()
        for key in self.sgcs.keys():
            self.queue.add("gw:" + key)
        for key in list(self.states):
            self.queue.add("gw:" + key)
        self.queue.add(GC_KEY)
        self.queue.add_after(STATUS_KEY, self.s.status_interval)

    def _supervise(self) -> None:
        """Notice dead wireguard-go processes between resyncs; the gateway is rebuilt by its reconcile."""
        while not self._stop.wait(1.0):
            for key, st in list(self.states.items()):
                # stat and /proc reads only: the worker thread owns the netlink sockets
                if not self.kernel.wg_alive(st.plan) or not self.kernel.netns_exists(st.plan.netns):
                    if st.plan.uid in self.ready_uids:
                        logs.obj_log(log, "StaticGatewayConfiguration", key).warning(
                            "%s lost its namespace or wireguard-go; rebuilding", st.plan.netns
                        )
                    self.ready_uids.discard(st.plan.uid)
                    self.queue.add("gw:" + key)

    def _worker(self) -> None:
        while (key := self.queue.get()) is not None:
            kind = key.split(":", 1)[0]
            start = time.monotonic()
            try:
                if key == GC_KEY:
                    self.gc()
                elif key == STATUS_KEY:
                    self.publish_status()
                else:
                    self.reconcile_gateway(key[3:])
                self.queue.forget(key)
            except (KernelError, k8s_errors.ApiError, OSError) as exc:
                self.metrics.reconcile_errors.labels(kind).inc()
                delay = self.queue.add_rate_limited(key)
                log.warning("%s failed (retry in %.1fs): %s", key, delay, exc, extra={"object": {"key": key}})
            except Exception:
                self.metrics.reconcile_errors.labels(kind).inc()
                self.queue.add_rate_limited(key)
                log.exception("%s failed unexpectedly", key)
            finally:
                self.metrics.reconcile_seconds.labels(kind).observe(time.monotonic() - start)
                self.queue.done(key)

    # ---------------------------------------------------------------------------------- node

    def _refresh_node(self) -> None:
        try:
            node = self.api.get(k8s.NODES, self.s.node_name)
        except k8s_errors.ApiError as exc:
            if self.node is None:
                log.warning("cannot read Node %s yet: %s", self.s.node_name, exc)
            return
        try:
            self.node = plan_gateway.node_facts(node, self.s.node_interface)
            self.node_uid = str((node.get("metadata") or {}).get("uid") or "") or None
        except ValidationError as exc:
            log.error("Node %s unusable: %s", self.s.node_name, exc)

    # ------------------------------------------------------------------------------ gateway

    def _private_key(self, sgc: crds.StaticGatewayConfiguration) -> bytes:
        uid = str(sgc.metadata.uid)
        ns, name = plan_gateway.secret_ref(sgc)
        try:
            secret = self.api.get(k8s.SECRETS, name, ns)
        except k8s_errors.ApiError:
            if uid in self._keys:
                return self._keys[uid]  # keep the device's key while the Secret is unreadable
            raise
        key = plan_gateway.private_key_from_secret(secret)
        self._keys[uid] = key
        return key

    def reconcile_gateway(self, key: str) -> None:
        olog = logs.obj_log(log, "StaticGatewayConfiguration", key)
        raw = self.sgcs.get(key)
        if raw is None or (raw.get("metadata") or {}).get("deletionTimestamp"):
            if key in self.states:
                self.queue.add(GC_KEY)
            return
        try:
            sgc = crds.StaticGatewayConfiguration.from_dict(raw)
        except ValidationError as exc:
            olog.warning("ignoring invalid StaticGatewayConfiguration: %s", exc)
            return
        if not crds.is_ready(sgc):
            olog.debug("not ready yet")
            return
        vmc_raw = self.vmcs.get(key)
        try:
            vmc = crds.GatewayVMConfiguration.from_dict(vmc_raw) if vmc_raw is not None else None
        except ValidationError as exc:
            olog.warning("ignoring invalid GatewayVMConfiguration: %s", exc)
            return
        profile = plan_gateway.vm_profile(vmc, self.s.node_name)
        if profile is None:
            olog.debug("no gatewayVMProfile for node %s", self.s.node_name)
            if key in self.states:
                self.queue.add(GC_KEY)
            return
        if self.node is None:
            self._refresh_node()
            if self.node is None:
                raise KernelError(f"Node {self.s.node_name} not readable yet")
        try:
            plan = plan_gateway.plan_gateway(sgc, profile, self.node, self._private_key(sgc))
        except ValidationError as exc:
            olog.error("cannot plan gateway: %s", exc)
            self.events.event(raw, WARNING, "InvalidGateway", str(exc))
            return
        old = self.states.get(key)
        if old is not None and old.plan.netns != plan.netns:
            self.queue.add(GC_KEY)  # the ILB IP changed: the old namespace goes
        if not (self.kernel.netns_exists(plan.netns) and self.kernel.wg_alive(plan)):
            self.ready_uids.discard(plan.uid)  # being (re)built: the probe says 503 until it is done
        before = self.kernel.writes
        self.kernel.ensure_gateway(plan)
        pes = plan_peers.endpoints_for(self.pes.items(), str(sgc.metadata.namespace), sgc.metadata.name)
        pods = self.pods.get if self.pods is not None else None
        incumbent = [p.pod_endpoint for p in old.peers.peers] if old is not None else []
        peers = plan_peers.plan_peers(plan.netns, pes, pods, incumbent)
        start = time.monotonic()
        batch_before = self.kernel.writes_by_kind.get("wireguard-peers", 0)
        observed = self.kernel.sync_peers(plan, peers)
        self.metrics.peer_sync_seconds.observe(time.monotonic() - start)
        if self.kernel.writes_by_kind.get("wireguard-peers", 0) != batch_before:
            self.metrics.peer_batch.observe(self.kernel.last_peer_batch)
        rejected = {r.pod_endpoint: r.message for r in peers.rejected}
        previous = self._rejected.get(key, {})
        for ref, message in rejected.items():
            pe = self.pes.get(ref)
            if pe is not None and previous.get(ref) != message:  # once per PodEndpoint and reason
                self.events.event(pe, WARNING, "InvalidPodEndpoint", message)
                logs.obj_log(log, "PodEndpoint", ref).warning("not applied: %s", message)
        self._rejected[key] = rejected
        self.states[key] = GatewayState(plan, peers, observed)
        self.ready_uids.add(plan.uid)
        self.metrics.peers.labels(key).set(len(observed.peers))
        self.metrics.invalid.labels(key).set(len(peers.rejected))
        self.metrics.gateways.set(len(self.states))
        writes = self.kernel.writes - before
        if writes:
            olog.info("applied %s: %d kernel writes, %d peers", plan.netns, writes, len(peers.peers))
        self.queue.add_after(STATUS_KEY, self.s.status_interval)

    # ----------------------------------------------------------------------------------- GC

    def gc(self) -> None:
        if not self.synced() or not all(i.connected for i in self._informers()):
            log.info("gc skipped: caches not fresh (API server unreachable?)")
            return
        wanted = plan_gateway.wanted_namespaces(self.sgcs.items(), self.vmcs.get, self.s.node_name)
        owned = self.kernel.list_owned()
        stale = [n for n in owned if n not in wanted]
        if stale and not wanted and not self.sgcs.keys():
            # an empty SGC list while we hold gateways: only believe it twice in a row (reliability §4.3)
            self._empty_gc_seen += 1
            if self._empty_gc_seen < 2:
                self.queue.add_after(GC_KEY, 5.0)
                return
        else:
            self._empty_gc_seen = 0
        keep_ilb = {str(p[1]) for n in owned if n not in stale and (p := names.parse_netns_name(n))}
        for netns in stale:
            try:
                self.kernel.teardown(netns, keep_ilb)
                log.info("removed gateway namespace %s", netns, extra={"object": {"kind": "netns", "key": netns}})
            except KernelError as exc:
                log.warning("gc of %s failed: %s", netns, exc)
                continue
            for key, st in list(self.states.items()):
                if st.plan.netns == netns:
                    self.ready_uids.discard(st.plan.uid)
                    del self.states[key]
                    with contextlib.suppress(KeyError):
                        self.metrics.peers.remove(key)
                        self.metrics.invalid.remove(key)
        self.metrics.gateways.set(len(self.states))
        if stale:
            self.queue.add_after(STATUS_KEY, self.s.status_interval)

    # ------------------------------------------------------------------------------- status

    def ready_view(self) -> tuple[list[plan_status.ReadyGateway], list[plan_status.ReadyPeer]]:
        """Ready gateways and peers from what was read back from the kernel (never from intent alone)."""
        gateways = []
        peers = []
        for st in self.states.values():
            if not st.observed.ready or st.plan.uid not in self.ready_uids:
                continue
            gateways.append(plan_status.ReadyGateway(st.plan.sgc, st.plan.netns))
            for p in st.peers.peers:
                have = st.observed.peers.get(_b64(p.public_key))
                if have == frozenset({p.pod_ip}) and p.pod_ip in st.observed.peer_routes:
                    peers.append(plan_status.ReadyPeer(p.pod_endpoint, st.plan.netns, p.public_key))
        return gateways, peers

    def publish_status(self) -> None:
        if self.node_uid is None:
            self._refresh_node()
            if self.node_uid is None:
                raise KernelError("Node uid unknown; GatewayStatus needs its owner")
        gateways, peers = self.ready_view()
        objs = plan_status.plan_status(
            self.s.node_name, self.node_uid, self.s.namespace, gateways, peers, budget=self.s.status_budget
        )
        rt = k8s.GATEWAY_STATUSES
        existing = {
            o["metadata"]["name"]: o
            for o in self.api.list(
                rt, self.s.namespace, label_selector=f"{plan_status.NODE_LABEL}={self.s.node_name}"
            ).items
        }
        head = self.api.get_or_none(rt, self.s.node_name, self.s.namespace)
        if head is not None:
            existing[self.s.node_name] = head  # the head may predate our label (created by someone else)
        # shards first, the node-named head last: a head showing N ready peers means every shard is written
        for obj in [*objs[1:], objs[0]]:
            cur = existing.get(obj.name)
            if cur is None:
                created = self.api.create(rt, {k: v for k, v in obj.body.items() if k != "status"}, self.s.namespace)
                self.metrics.status_writes.inc()
                created["status"] = obj.status
                self.api.replace_status(rt, created)
                self.metrics.status_writes.inc()
                continue
            if not plan_status.spec_equal(cur, obj):
                body = dict(obj.body)
                body["metadata"] = dict(obj.body["metadata"], resourceVersion=cur["metadata"]["resourceVersion"])
                cur = self.api.replace(rt, body)
                self.metrics.status_writes.inc()
            if not plan_status.status_equal(cur, obj):
                self.api.replace_status(rt, dict(cur, status=obj.status))
                self.metrics.status_writes.inc()
        wanted = {o.name for o in objs}
        for name, cur in existing.items():
            if (
                name not in wanted
                and (cur["metadata"].get("labels") or {}).get(plan_status.NODE_LABEL) == self.s.node_name
            ):
                self.api.delete(rt, name, self.s.namespace, uid=cur["metadata"].get("uid"))
                self.metrics.status_writes.inc()

    # -------------------------------------------------------------------------------- probe

    def probe_ready(self, uid: str) -> bool:
        return uid in self.ready_uids


def _b64(text: str) -> bytes:
    import base64

    return base64.b64decode(text)
