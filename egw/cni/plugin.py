"""The chained CNI plugin ``kube-egress-gateway-cni``: ADD, DEL, CHECK, GC and STATUS (upstream-spec.md §5.4-§5.6).

Runs inside cni-manager (``egw.cni.manager``), which receives each invocation from the compiled front end
and hands it to ``egw.cni.skel.run`` with an instance of :class:`Plugin`. Kubernetes access goes through
the :class:`Cluster` protocol (implemented by ``egw.cni.cluster`` on the informer cache), pod netns
changes through ``egw.cni.podnet``, desired state comes from the pure ``egw.plan.pod``.

Contract highlights (reliability.md §1):
* Pods without the annotation: the previous result is printed unchanged; nothing else happens.
* If cni-manager cannot tell whether the pod is annotated (API server unreachable and not cached),
  ADD fails with 11 "try again later" rather than letting a gateway pod egress with the node's IP.
* The SGC is always looked up in the pod's own namespace: a pod cannot use another namespace's gateway.
* A failed ADD removes what it made (wg0, rule, mangle rules, table 8738, the PodEndpoint).
* DEL never fails on environmental problems (netns gone, wg0 gone, API server down, PodEndpoint gone);
  the PodEndpoint is deleted only when it belongs to this container ID, so a stale DEL of an old sandbox
  cannot remove the new sandbox's PodEndpoint. Anything DEL cannot reach is collected later (ownerRef GC,
  cni-manager's orphan sweep, CNI GC).
"""

from __future__ import annotations

import base64
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from egw.cni import conf, podnet
from egw.cni.conf import CniError, PodRef
from egw.cni.skel import CmdArgs
from egw.model import cniproto
from egw.plan import pod

log = logging.getLogger("egw.cni.plugin")

FAULT_STEPS = ("link-created", "link-moved", "published", "routes", "iptables")


class Crash(BaseException):
    """Test-only: abandon the request at a fault point like kill -9 would (no cleanup, no answer)."""


@dataclass(frozen=True)
class PodInfo:
    uid: str
    annotations: dict[str, str]
    node_name: str = ""


class Cluster(Protocol):
    """What the plugin needs from the API server; every method raises CniError with a spec code."""

    def pod_info(self, ref: PodRef) -> PodInfo: ...
    def gateway(self, namespace: str, name: str) -> pod.Gateway: ...
    def publish(self, ref: PodRef, info: PodInfo, container_id: str, sgc: str, ip: str, public_key: str) -> None: ...
    def endpoint_key(self, ref: PodRef) -> str | None: ...
    def withdraw(self, ref: PodRef, container_id: str) -> None: ...
    def collect(self, valid_container_ids: set[str]) -> list[str]: ...
    def ready(self) -> bool: ...


def new_private_key() -> tuple[bytes, str]:
    """(raw private key, base64 public key). The private bytes never leave cni-manager and wireguard-go."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

    key = X25519PrivateKey.generate()
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return raw, base64.b64encode(pub).decode()


@dataclass
class Phases:
    """Per-phase wall time of one request, logged for bench/cni_latency."""

    started: float = field(default_factory=time.perf_counter)
    marks: list[tuple[str, float]] = field(default_factory=list)

    def mark(self, name: str) -> None:
        self.marks.append((name, time.perf_counter()))

    def text(self) -> str:
        out, last = [], self.started
        for name, t in self.marks:
            out.append(f"{name}={(t - last) * 1000:.2f}ms")
            last = t
        return " ".join(out)


class Plugin:
    def __init__(
        self,
        cluster: Cluster,
        node_excluded: Sequence[pod.IPNetwork] = (),
        *,
        test_faults: bool = False,
    ) -> None:
        self.cluster = cluster
        self.node_excluded = tuple(node_excluded)
        self.test_faults = test_faults

    # ------------------------------------------------------------------------------------- helpers

    def _fault(self, cmd: CmdArgs) -> Any:
        wanted = cmd.env.get("EGW_CNI_TEST_FAULT", "") if self.test_faults else ""

        def fault(step: str) -> None:
            if step == wanted:
                log.warning("test fault: abandoning %s of %s at %s", cmd.command, cmd.container_id, step)
                raise Crash(step)

        return fault

    def _gateway_name(self, info: PodInfo) -> str | None:
        name = info.annotations.get(cniproto.GATEWAY_ANNOTATION)
        if name is None:
            return None
        if not conf.valid_object_name(name):
            raise CniError(
                conf.ERR_INVALID_ANNOTATION,
                f"annotation {cniproto.GATEWAY_ANNOTATION} is not a StaticGatewayConfiguration name",
                repr(name[:100]),
            )
        return name

    def _excluded(self, cmd: CmdArgs) -> tuple[pod.IPNetwork, ...]:
        out = list(self.node_excluded)
        out.extend(c for c in cmd.conf.excluded_cidrs if c not in out)
        return tuple(out)

    # ------------------------------------------------------------------------------------------ ADD

    def add(self, cmd: CmdArgs) -> dict[str, Any]:
        phases = Phases()
        ref = conf.pod_ref(cmd.args)
        prev = cmd.conf.prev_result
        if not prev:
            raise CniError(conf.ERR_INVALID_CONFIG, "prevResult is required: kube-egress-gateway-cni must run chained")
        info = self.cluster.pod_info(ref)
        sgc = self._gateway_name(info)
        phases.mark("lookup")
        if sgc is None:
            log.debug("ADD %s %s: not annotated, pass-through (%s)", ref.key, cmd.container_id, phases.text())
            return conf.passthrough(prev, cmd.conf.cni_version)
        addrs = conf.pod_addresses(prev, cmd.ifname, cmd.netns)
        gw = self.cluster.gateway(ref.namespace, sgc)
        phases.mark("gateway")
        fault = self._fault(cmd)
        published = False
        try:
            observed = podnet.observe(cmd.netns, cmd.ifname, mangle=False)  # setup reads mangle itself
            plan = pod.plan_pod(addrs.ipv4, observed.ns, gw, self._excluded(cmd))
            phases.mark("observe")
            private, public = new_private_key()

            def publish() -> None:
                nonlocal published
                phases.mark("wireguard")
                self.cluster.publish(ref, info, cmd.container_id, sgc, plan.endpoint_allowed_ip, public)
                published = True
                phases.mark("publish")
                fault("published")

            podnet.setup(cmd.netns, cmd.container_id, plan, private, observed.has_wg, fault, publish)
            phases.mark("routes")
        except Crash:
            raise
        except (CniError, pod.PlanError, podnet.PodNetError, OSError) as exc:
            self._undo(cmd, ref, published)
            if isinstance(exc, CniError):
                raise
            if isinstance(exc, podnet.NetnsGone):
                raise CniError(conf.ERR_POD_NETWORK, "pod netns does not exist", cmd.netns) from None
            raise CniError(conf.ERR_POD_NETWORK, "failed to set up the pod's gateway tunnel", str(exc)) from None
        except Exception:
            self._undo(cmd, ref, published)
            raise
        log.info(
            "ADD %s %s: wg0 -> %s (%s), PodEndpoint %s published; %s",
            ref.key,
            cmd.container_id,
            plan.peer_endpoint,
            sgc,
            plan.endpoint_allowed_ip,
            phases.text(),
        )
        return conf.with_interface(prev, cmd.conf.cni_version, pod.WG_IFNAME, cmd.netns)

    def _undo(self, cmd: CmdArgs, ref: PodRef, published: bool) -> None:
        for problem in podnet.teardown(cmd.netns, cmd.container_id, cmd.ifname):
            log.warning("ADD %s cleanup: %s", ref.key, problem)
        if published:
            try:
                self.cluster.withdraw(ref, cmd.container_id)
            except Exception as exc:
                log.warning("ADD %s cleanup: PodEndpoint: %s", ref.key, exc)

    # ------------------------------------------------------------------------------------------ DEL

    def delete(self, cmd: CmdArgs) -> None:
        try:
            ref: PodRef | None = conf.pod_ref(cmd.args)
        except CniError as exc:
            log.warning("DEL %s: %s; only local cleanup", cmd.container_id, exc)
            ref = None
        # Local state exists only if ADD started a device for this container, or the pod is annotated
        # (partial state of an interrupted ADD). Skip the netns visit for everyone else.
        annotated = True
        if ref is not None:
            try:
                annotated = self._gateway_name(self.cluster.pod_info(ref)) is not None
            except CniError:
                annotated = True
        has_device = os.path.exists(f"{podnet.UAPI_DIR}/{podnet.temp_link_name(cmd.container_id)}.sock")
        if annotated or has_device:
            for problem in podnet.teardown(cmd.netns or None, cmd.container_id, cmd.ifname):
                log.warning("DEL %s: %s", cmd.container_id, problem)
        if ref is not None and annotated:
            try:
                self.cluster.withdraw(ref, cmd.container_id)
            except Exception as exc:
                log.warning("DEL %s: PodEndpoint left for the orphan sweep: %s", ref.key, exc)
        log.info("DEL %s %s done", ref.key if ref else "?", cmd.container_id)

    # ---------------------------------------------------------------------------------------- CHECK

    def check(self, cmd: CmdArgs) -> None:
        ref = conf.pod_ref(cmd.args)
        prev = cmd.conf.prev_result
        if not prev:
            raise CniError(conf.ERR_INVALID_CONFIG, "prevResult is required for CHECK")
        sgc = self._gateway_name(self.cluster.pod_info(ref))
        if sgc is None:
            return
        addrs = conf.pod_addresses(prev, cmd.ifname, cmd.netns)
        gw = self.cluster.gateway(ref.namespace, sgc)
        try:
            observed = podnet.observe(cmd.netns, cmd.ifname)
            wg = podnet.read_wg_kernel(cmd.netns) if podnet.kernel_wireguard() else podnet.read_wg(cmd.container_id)
        except podnet.PodNetError as exc:
            raise CniError(conf.ERR_CHECK_FAILED, "cannot inspect the pod netns", str(exc)) from None
        problems: list[str] = []
        if not observed.has_wg or wg is None:
            problems.append(f"{pod.WG_IFNAME} is missing")
        else:
            peer = wg.peers.get(gw.public_key)
            if peer is None:
                problems.append("the gateway peer is missing from wg0")
            elif peer.get("endpoint") != gw.endpoint_text:
                problems.append(f"the gateway peer endpoint is {peer.get('endpoint')}, want {gw.endpoint_text}")
            if self.cluster.endpoint_key(ref) != wg.public_key:
                problems.append("the PodEndpoint does not carry wg0's public key")
        try:
            plan = pod.plan_pod(addrs.ipv4, observed.ns, gw, self._excluded(cmd))
            problems.extend(pod.check_plan(plan, observed.ns.routes, observed.rules, observed.mangle))
        except pod.PlanError as exc:
            problems.append(str(exc))
        if problems:
            raise CniError(conf.ERR_CHECK_FAILED, "pod gateway setup is broken", "; ".join(problems))

    # ------------------------------------------------------------------------------------ GC, STATUS

    def gc(self, cmd: CmdArgs) -> None:
        valid = {a.container_id for a in (cmd.conf.valid_attachments or ())}
        failures = self.cluster.collect(valid)
        keep = {podnet.temp_link_name(c) for c in valid}
        for name in _device_names():
            if name not in keep:
                failures.extend(podnet.remove_device(name))
        if failures:
            log.warning("GC: partial failures: %s", "; ".join(failures))

    def status(self, cmd: CmdArgs) -> None:
        if not self.cluster.ready():
            raise CniError(
                conf.ERR_NOT_AVAILABLE,
                "plugin not available",
                "cni-manager has no pod cache and cannot reach the API server",
            )


def _device_names() -> Iterable[str]:
    try:
        entries = os.listdir(podnet.UAPI_DIR)
    except FileNotFoundError:
        return []
    prefix = podnet.POD_DEVICE_PREFIX
    return [e[:-5] for e in entries if e.startswith(prefix) and e.endswith(".sock") and len(e) == 20]
