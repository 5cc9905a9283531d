"""Gateway-node kernel adapter: read, compare, and write only the difference for one gateway's plan.

Callers: ``egw.daemon.reconciler`` (one worker thread; nothing here is shared across threads). Every
mutating kernel operation goes through :meth:`GatewayKernel._write`, which counts it (``writes`` and the
``egw_kernel_writes_total`` metric): a restart over a converged node must count zero.

Where things live: the *node namespace* is the daemon's own network namespace, or ``node_netns`` (a
named namespace; tests run several "nodes" on one host this way, and the daemon itself stays in the host
namespace to reach the API server). Each gateway namespace is entirely ours; on the node we own only the
veth host end ``gw-<uid8>``, the route over it, our commented nat rules and the ILB /32.

Ownership, for garbage collection: a ``gw-<uid>-<ip>`` namespace is ours when the state directory holds
its marker (written when we create it) or our veth host end for it exists in the node namespace. Other
``gw-`` namespaces (another daemon's, on a shared test host) are never touched.

Routes use protocol ``boot`` (as ``ip route add`` does) so ``ip route`` prints exactly what the seed shows;
they are identified as ours by their device. Links/addresses/routes go through pyroute2; iptables
through ``iptables-save``/``iptables-restore -w`` in the right namespace. WireGuard devices and peer
routes go through ``egw.dataplane`` (``wg.WireGuard``: kernel genetlink when the module exists, else the
UAPI of the wireguard-go process ``egw.daemon.wgdev`` supervises; ``rtnl.Rtnl``: batched peer routes,
marked with egw's route protocol).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import ipaddress
import logging
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute, NetlinkError
from pyroute2 import netns as p2netns

from egw.daemon import wgdev
from egw.dataplane import rtnl as dp_rtnl
from egw.dataplane import wg as dp_wg
from egw.errors import EgwError
from egw.model import names, net
from egw.plan import gateway as plan_gateway
from egw.plan import iptables as plan_iptables
from egw.plan import peers as plan_peers

log = logging.getLogger(__name__)

NETNS_DIR = Path("/run/netns")
RTPROT_BOOT = 3
SCOPE_LINK = 253
SCOPE_UNIVERSE = 0
IFF_UP = 1
IFA_F_NODAD = 0x02
MAIN_TABLE = 254

WriteHook = Callable[[str, int], None]


class KernelError(RuntimeError):
    """A step of a gateway's apply failed; the message names the gateway namespace and the step."""


@dataclass
class GatewayObservation:
    """Read back after an apply: what is really in place, for GatewayStatus and the LB probe."""

    netns: str
    ready: bool
    peers: dict[bytes, frozenset[ipaddress.IPv4Network | ipaddress.IPv6Network]]
    peer_routes: set[ipaddress.IPv4Network | ipaddress.IPv6Network]


def _ns_cmd(netns: str | None) -> list[str]:
    return ["nsenter", f"--net={NETNS_DIR / netns}", "--"] if netns else []


class GatewayKernel:
    def __init__(
        self,
        *,
        state_dir: Path,
        node_netns: str | None = None,
        wireguard_go: str = "wireguard-go",
        backend: str = "auto",
        on_write: WriteHook | None = None,
    ) -> None:
        if node_netns is not None:
            names.validate_netns_name(node_netns, "--node-netns")
        self.state_dir = state_dir
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.node_netns = node_netns
        self.wgo = wgdev.WireguardGo(state_dir, node_netns, wireguard_go)
        if backend not in ("auto", "kernel", "wireguard-go"):
            raise ValueError(f"--wireguard-backend: invalid value {backend!r}: auto, kernel or wireguard-go")
        self.backend = backend if backend != "auto" else ("kernel" if kernel_wireguard(node_netns) else "wireguard-go")
        self.writes = 0
        self.last_peer_batch = 0
        self.writes_by_kind: dict[str, int] = {}
        self._on_write = on_write
        self._iprs: dict[str | None, IPRoute] = {}

    # ------------------------------------------------------------------------------- plumbing

    def _write(self, kind: str, n: int = 1) -> None:
        self.writes += n
        self.writes_by_kind[kind] = self.writes_by_kind.get(kind, 0) + n
        if self._on_write is not None:
            self._on_write(kind, n)

    def ipr(self, netns: str | None) -> IPRoute:
        """A cached rtnetlink socket in ``netns`` (None: the node namespace)."""
        ns = netns if netns is not None else self.node_netns
        sock = self._iprs.get(ns)
        if sock is None:
            sock = IPRoute(netns=ns, flags=0) if ns else IPRoute()
            self._iprs[ns] = sock
        return sock

    def _drop_ipr(self, netns: str) -> None:
        sock = self._iprs.pop(netns, None)
        if sock is not None:
            with contextlib.suppress(Exception):
                sock.close()

    def close(self) -> None:
        for ns in list(self._iprs):
            sock = self._iprs.pop(ns)
            with contextlib.suppress(Exception):
                sock.close()

    def _run(self, netns: str | None, argv: list[str], stdin: str | None = None) -> str:
        try:
            out = subprocess.run(
                [*_ns_cmd(netns), *argv], input=stdin, capture_output=True, text=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise KernelError(f"{argv[0]} in {netns or 'node'}: {exc}") from None
        if out.returncode != 0:
            raise KernelError(f"{argv[0]} in {netns or 'node'} failed ({out.returncode}): {out.stderr.strip()[:500]}")
        return out.stdout

    def _node_ns(self) -> str | None:
        return self.node_netns

    @staticmethod
    def _index(ipr: IPRoute, ifname: str) -> int | None:
        found = ipr.link_lookup(ifname=ifname)
        return int(found[0]) if found else None

    # ----------------------------------------------------------------------------- namespaces

    def netns_exists(self, name: str) -> bool:
        path = NETNS_DIR / name
        try:
            return path.stat().st_dev == os.stat("/proc/self/ns/net").st_dev
        except OSError:
            return False

    def list_owned(self) -> list[str]:
        """Our gateway namespaces (see the ownership rule in the module docstring)."""
        try:
            entries = sorted(os.listdir(NETNS_DIR))
        except FileNotFoundError:
            return []
        node_links = self._node_link_names()
        out = []
        for name in entries:
            parsed = names.parse_netns_name(name)
            if parsed is None:
                continue
            uid, _ = parsed
            if (self.state_dir / f"{name}.netns").exists() or names.host_veth_name(uid) in node_links:
                out.append(name)
        return out

    def _node_link_names(self) -> set[str]:
        return {str(link.get_attr("IFLA_IFNAME")) for link in self.ipr(None).get_links()}

    def _ensure_netns(self, name: str) -> None:
        names.validate_netns_name(name)
        marker = self.state_dir / f"{name}.netns"
        if self.netns_exists(name):
            if not marker.exists():
                marker.write_text("")
            return
        path = NETNS_DIR / name
        if path.exists():  # a file left by a crash between create and bind-mount
            with contextlib.suppress(OSError):
                path.unlink()
        marker.write_text("")
        p2netns.create(name)
        self._write("netns")

    # -------------------------------------------------------------------------------- gateway

    def ensure_gateway(self, plan: plan_gateway.GatewayPlan) -> None:
        """Namespace, WireGuard device, veth, addresses, routes, sysctls, iptables: compare, then write."""
        ns = plan.netns
        step = "netns"
        try:
            self._ensure_netns(ns)
            step = "sysctl"
            self._ensure_sysctls(ns, plan.netns_sysctls)
            gw = self.ipr(ns)
            step = "lo"
            self._ensure_up(gw, "lo")
            step = "wireguard device"
            self._ensure_wg_link(plan)
            step = "wg0 address"
            self._ensure_addr(gw, plan.wg_ifname, plan.wg_address.ip, 64, nodad=True)
            self._ensure_up(gw, plan.wg_ifname)
            step = "wireguard config"
            self._ensure_wg_config(plan)
            step = "veth"
            self._ensure_veth(plan)
            step = "host0 address"
            self._ensure_addr(gw, plan.gateway_veth, plan.secondary_ip, 32)
            self._ensure_up(gw, plan.gateway_veth)
            step = "gateway routes"
            self._ensure_routes(gw, ns, plan.gateway_veth, plan.netns_routes)
            step = "node route"
            self._ensure_routes(self.ipr(None), None, plan.host_veth, plan.node_routes)
            step = "gateway iptables"
            self._ensure_netns_nat(ns)
            step = "node nat exemption"
            self._ensure_node_exemption(ns, plan_iptables.exemption_rule(plan.secondary_ip, ns))
            step = "ILB address"
            self._ensure_ilb(plan)
        except (OSError, NetlinkError, EgwError, KernelError) as exc:
            raise KernelError(f"gateway {ns}: {step}: {exc}") from None

    def _ensure_sysctls(self, ns: str, wanted: Iterable[tuple[str, str]]) -> None:
        wanted = list(wanted)
        paths = [f"/proc/sys/{k}" for k, _ in wanted]
        current = self._run(ns, ["cat", *paths]).split()
        for (key, value), cur in zip(wanted, current, strict=False):
            if cur != value:
                self._run(ns, ["sysctl", "-q", "-w", f"{key.replace('/', '.')}={value}"])
                self._write("sysctl")

    def _ensure_up(self, ipr: IPRoute, ifname: str) -> None:
        idx = self._index(ipr, ifname)
        if idx is None:
            raise KernelError(f"link {ifname} missing")
        link = ipr.get_links(idx)[0]
        if not link["flags"] & IFF_UP:
            ipr.link("set", index=idx, state="up")
            self._write("link")

    def _ensure_addr(
        self,
        ipr: IPRoute,
        ifname: str,
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
        plen: int,
        *,
        nodad: bool = False,
        label: str | None = None,
    ) -> None:
        idx = self._index(ipr, ifname)
        if idx is None:
            raise KernelError(f"link {ifname} missing")
        for a in ipr.get_addr(index=idx):
            if a.get_attr("IFA_ADDRESS") == str(ip) and a["prefixlen"] == plen:
                return
        kw: dict[str, Any] = {}
        if nodad:
            kw["flags"] = IFA_F_NODAD
        if label:
            kw["label"] = label
        ipr.addr("add", index=idx, address=str(ip), prefixlen=plen, **kw)
        self._write("addr")

    def _routes_on(self, ipr: IPRoute, idx: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for fam in (socket.AF_INET, socket.AF_INET6):
            for r in ipr.get_routes(family=fam, table=MAIN_TABLE):
                if r.get_attr("RTA_OIF") != idx or r["type"] != 1:  # unicast only
                    continue
                dst = r.get_attr("RTA_DST")
                if dst is None:
                    dst = "0.0.0.0" if fam == socket.AF_INET else "::"  # noqa: S104 - a default route
                net = ipaddress.ip_network(f"{dst}/{r['dst_len']}", strict=False)
                if fam == socket.AF_INET6 and net.is_link_local:
                    continue  # the kernel's own fe80::/64
                out[str(net)] = r
        return out

    def _ensure_routes(
        self, ipr: IPRoute, ns: str | None, ifname: str, routes: Iterable[plan_gateway.Route], *, prune: bool = False
    ) -> None:
        idx = self._index(ipr, ifname)
        if idx is None:
            raise KernelError(f"link {ifname} missing")
        current = self._routes_on(ipr, idx)
        wanted = {str(r.dst): r for r in routes}
        # link-scope routes first: the default route's gateway must be reachable when it is added
        for key, r in sorted(wanted.items(), key=lambda kv: kv[1].scope != "link"):
            have = current.get(key)
            scope = SCOPE_LINK if r.scope == "link" else SCOPE_UNIVERSE
            gw = str(r.gateway) if r.gateway else None
            if have is not None and have["scope"] == scope and have.get_attr("RTA_GATEWAY") == gw:
                continue
            kw: dict[str, Any] = {"dst": key, "oif": idx, "scope": scope, "proto": RTPROT_BOOT}
            if gw:
                kw["gateway"] = gw
            ipr.route("replace", **kw)
            self._write("route")
        if prune:
            for key in set(current) - set(wanted):
                with contextlib.suppress(NetlinkError):
                    ipr.route("del", dst=key, oif=idx)
                    self._write("route")

    def _ensure_veth(self, plan: plan_gateway.GatewayPlan) -> None:
        node = self.ipr(None)
        gw = self.ipr(plan.netns)
        host_idx = self._index(node, plan.host_veth)
        peer_idx = self._index(gw, plan.gateway_veth)
        if host_idx is not None and peer_idx is None:
            node.link("del", index=host_idx)  # half of an old pair (the other end is not in our namespace)
            self._write("link")
            host_idx = None
        if host_idx is None:
            if peer_idx is not None:
                gw.link("del", index=peer_idx)
                self._write("link")
            fd = os.open(NETNS_DIR / plan.netns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                node.link(
                    "add", ifname=plan.host_veth, kind="veth", peer={"ifname": plan.gateway_veth, "net_ns_fd": fd}
                )
            finally:
                os.close(fd)
            self._write("link")
        self._ensure_up(node, plan.host_veth)

    def wg_alive(self, plan: plan_gateway.GatewayPlan) -> bool:
        """The device's backing exists: always for the kernel, the supervised process for wireguard-go."""
        return self.backend == "kernel" or self.wgo.alive(plan.wg_birth_name)

    def _wg(self, plan: plan_gateway.GatewayPlan) -> dp_wg.WireGuard:
        if self.backend == "kernel":
            return dp_wg.WireGuard(plan.wg_ifname, netns=plan.netns, backend="kernel")
        sock = str(self.wgo.socket_path(plan.wg_birth_name))
        return dp_wg.WireGuard(plan.wg_ifname, netns=plan.netns, backend="uapi", uapi_path=sock)

    def _ensure_wg_link(self, plan: plan_gateway.GatewayPlan) -> None:
        gw = self.ipr(plan.netns)
        if self._index(gw, plan.wg_ifname) is not None and self.wg_alive(plan):
            return
        if self.backend == "kernel":
            # born in the node namespace's socket, created directly inside the gateway namespace
            dp_wg.create_kernel_link(plan.wg_ifname, node_netns=self.node_netns, target_netns=plan.netns)
            self._write("link")
            return
        # (re)build: a dead wireguard-go took its TUN with it; a stray wg0 without its process is removed
        idx = self._index(gw, plan.wg_ifname)
        if idx is not None:
            gw.link("del", index=idx)
            self._write("link")
        node = self.ipr(None)
        birth = plan.wg_birth_name
        self.wgo.start(birth)
        self._write("wireguard-go")
        idx = None
        for _ in range(200):
            idx = self._index(node, birth)
            if idx is not None:
                break
            time.sleep(0.01)
        if idx is None:
            raise KernelError(f"wireguard-go did not create {birth}")
        fd = os.open(NETNS_DIR / plan.netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            node.link("set", index=idx, net_ns_fd=fd)
        finally:
            os.close(fd)
        self._write("link")
        moved = self._index(gw, birth)
        if moved is None:
            raise KernelError(f"{birth} did not arrive in {plan.netns}")
        gw.link("set", index=moved, ifname=plan.wg_ifname)
        self._write("link")
        # like a kernel WireGuard device: no kernel-generated link-local, only fe80::1 (set before it goes up)
        self._run(plan.netns, ["ip", "link", "set", "dev", plan.wg_ifname, "addrgenmode", "none"])
        self._write("link")

    def _ensure_wg_config(self, plan: plan_gateway.GatewayPlan) -> None:
        """Private key and listen port only; peers are :meth:`sync_peers`' job."""
        with self._wg(plan) as wg:
            p = dp_wg.plan(net.WgDevice(plan.wg_ifname, plan.private_key, plan.listen_port), wg.read())
            if p.device is not None:
                wg.apply(p.device, [])
                self._write("wireguard")

    def _ensure_netns_nat(self, ns: str) -> None:
        have = plan_iptables.table_rules(self._run(ns, ["iptables-save", "-t", "nat"]), "nat")
        if have != list(plan_iptables.netns_nat_rules()):
            self._run(ns, ["iptables-restore", "-w", "5"], plan_iptables.netns_nat_document())
            self._write("iptables")

    def _node_postrouting(self) -> list[str]:
        save = self._run(self._node_ns(), ["iptables-save", "-t", "nat"])
        return plan_iptables.chain_rules(save, "nat", "POSTROUTING")

    def _ensure_node_exemption(self, ns: str, want: str | None) -> None:
        doc = plan_iptables.node_exemption_document(self._node_postrouting(), ns, want)
        if doc is not None:
            self._run(self._node_ns(), ["iptables-restore", "-w", "5", "--noflush"], doc)
            self._write("iptables")

    def _ensure_ilb(self, plan: plan_gateway.GatewayPlan) -> None:
        node = self.ipr(None)
        idx = self._index(node, plan.node_ifname)
        if idx is None:
            raise KernelError(f"node interface {plan.node_ifname} missing")
        addrs = [(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in node.get_addr(index=idx)]
        # the secondary IP must not live on the node, or replies would terminate there (seed step 4)
        for addr, plen in addrs:
            if addr == str(plan.secondary_ip):
                node.addr("del", index=idx, address=addr, prefixlen=plen)
                self._write("addr")
        if not any(addr == str(plan.ilb_ip) for addr, _ in addrs):
            self._ensure_addr(node, plan.node_ifname, plan.ilb_ip, 32, label=plan.ilb_label)

    # ----------------------------------------------------------------------------------- peers

    def sync_peers(self, plan: plan_gateway.GatewayPlan, peers: plan_peers.PeersPlan) -> GatewayObservation:
        """Make wg0's peers and the peer routes exactly the plan's (one batch each), then read back."""
        desired = net.WgDevice(
            plan.wg_ifname,
            plan.private_key,
            plan.listen_port,
            peers=frozenset(net.WgPeer(_key_bytes(p.public_key), frozenset({p.pod_ip})) for p in peers.peers),
        )
        routes = [net.Route(p.pod_ip, plan.wg_ifname, scope=net.SCOPE_LINK) for p in peers.peers]
        try:
            with self._wg(plan) as wg:
                state = wg.read()
                p = dp_wg.plan(desired, state)
                if p:
                    wg.apply(p.device, p.ops)
                    self._write("wireguard-peers")
                    self.last_peer_batch = len(p.ops)
                    state = wg.read()
            with dp_rtnl.Rtnl(plan.netns) as rt:
                report = rt.sync_routes(routes)
                if report.messages:
                    self._write("route", report.messages)
                present = {r.dst for r in rt.routes() if r.dev == plan.wg_ifname}
        except (OSError, EgwError) as exc:
            raise KernelError(f"gateway {plan.netns}: peers: {exc}") from None
        return GatewayObservation(
            netns=plan.netns,
            ready=True,
            peers={k: peer.allowed_ips for k, peer in state.peers.items()},
            peer_routes=present,
        )

    # -------------------------------------------------------------------------------- teardown

    def teardown(self, netns: str, keep_ilb: Iterable[str] = ()) -> None:
        """Remove exactly what we created for ``netns``: node nat exemption, the ILB /32 when no other
        gateway of ours uses it, wireguard-go, and the namespace (which takes wg0, the veth and the node
        route with it)."""
        names.validate_netns_name(netns)
        parsed = names.parse_netns_name(netns)
        try:
            self._ensure_node_exemption(netns, None)
            if parsed is not None:
                uid, ilb = parsed
                if str(ilb) not in set(keep_ilb):
                    self._remove_ilb(ilb)
                host_idx = self._index(self.ipr(None), names.host_veth_name(uid))
                if host_idx is not None:
                    self.ipr(None).link("del", index=host_idx)
                    self._write("link")
            birth = names.wg_birth_name(netns)
            if self.wgo.pid(birth) is not None:
                self.wgo.stop(birth)
                self._write("wireguard-go")
            self._drop_ipr(netns)
            if (NETNS_DIR / netns).exists():
                p2netns.remove(netns)
                self._write("netns")
        except (OSError, NetlinkError, KernelError) as exc:
            if not (isinstance(exc, OSError) and exc.errno == errno.ENOENT):
                raise KernelError(f"teardown {netns}: {exc}") from None
        with contextlib.suppress(OSError):
            (self.state_dir / f"{netns}.netns").unlink()

    def _remove_ilb(self, ilb: ipaddress.IPv4Address) -> None:
        node = self.ipr(None)
        for a in node.get_addr():
            if a.get_attr("IFA_ADDRESS") == str(ilb) and a["prefixlen"] == 32:
                node.addr("del", index=a["index"], address=str(ilb), prefixlen=32)
                self._write("addr")


def _key_bytes(text: str) -> bytes:
    return base64.b64decode(text)


def kernel_wireguard(node_netns: str | None) -> bool:
    """True when the kernel has WireGuard (its generic-netlink family exists)."""
    try:
        dp_wg.WireGuard(names.WG_IFNAME, netns=node_netns, backend="kernel").close()
    except (EgwError, OSError):
        return False
    return True
