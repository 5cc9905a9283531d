"""Wire protocol between the ``kube-egress-gateway-cni`` front end and ``egw cni-manager``.

Design ("thick plugin", as Multus does it): the container runtime execs the small compiled front end
``csrc/cni_shim/shim.c`` for every pod on the node. The front end does no CNI logic at all: it forwards
the CNI environment and stdin over a root-only unix socket to the long-running cni-manager, which runs
the whole plugin (``egw.cni.skel`` → ``egw.cni.plugin``) and answers with the exit status and the exact
bytes to print on stdout. This keeps the per-pod cost of a non-annotated pod at one connect + one
round trip instead of a Python interpreter start (30-50 ms here).

Framing (both directions are byte streams over one SOCK_STREAM connection; the C side is the reference):

* request  = ``MAGIC`` + ``KEY=VALUE\\0`` for each forwarded variable + ``\\0`` + stdin bytes until the
  client shuts down its write side. Only ``FORWARDED_ENV`` keys are sent; a key the server does not
  know is ignored, a malformed entry rejects the request.
* response = ``MAGIC`` + decimal exit status + ``\\n`` + stdout bytes until EOF.

Both sides cap the request at ``MAX_REQUEST`` bytes. Everything here is pure so the framing has unit
tests without sockets; ``egw.cni.manager`` does the I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

MAGIC = b"EGWCNI1\n"
MAX_REQUEST = 1 << 20
MAX_ENV_VALUE = 64 << 10

# The pod annotation naming a StaticGatewayConfiguration in the pod's own namespace.
GATEWAY_ANNOTATION = "kubernetes.azure.com/static-gateway-configuration"
# Annotations cni-manager puts on each PodEndpoint so a stale DEL (old sandbox) cannot delete the
# PodEndpoint of the pod's new sandbox (reliability.md §1.2).
CONTAINER_ID_ANNOTATION = "egressgateway.kubernetes.azure.com/cni-container-id"
NODE_ANNOTATION = "egressgateway.kubernetes.azure.com/node"

# Where the front end connects unless EGW_CNI_SOCKET overrides it (the runtime passes its environment
# through to plugins, which is how tests point one front end at one cni-manager).
DEFAULT_SOCKET_DIR = "/var/run/kube-egress-gateway"
DEFAULT_SOCKET = DEFAULT_SOCKET_DIR + "/cni.sock"
SOCKET_ENV = "EGW_CNI_SOCKET"
PLUGIN_TYPE = "kube-egress-gateway-cni"
CONFLIST_NAME = "01-egressgateway.conflist"

FORWARDED_ENV = (
    "CNI_COMMAND",
    "CNI_CONTAINERID",
    "CNI_NETNS",
    "CNI_IFNAME",
    "CNI_ARGS",
    "CNI_PATH",
    # Only honoured by a cni-manager started with --test-faults: aborts ADD at a named step, the way
    # kill -9 would, so tests can prove that DEL cleans up after any interruption.
    "EGW_CNI_TEST_FAULT",
)


class ProtocolError(ValueError):
    """The peer sent bytes that are not a request/response of this protocol."""


@dataclass(frozen=True)
class Request:
    env: Mapping[str, str]
    stdin: bytes


@dataclass(frozen=True)
class Response:
    exit_code: int
    stdout: bytes


def encode_request(env: Mapping[str, str], stdin: bytes) -> bytes:
    parts = [MAGIC]
    for key in FORWARDED_ENV:
        value = env.get(key)
        if value is None:
            continue
        if "\0" in value:
            raise ProtocolError(f"environment variable {key} contains a NUL byte")
        parts.append(f"{key}={value}".encode() + b"\0")
    parts.append(b"\0")
    parts.append(stdin)
    out = b"".join(parts)
    if len(out) > MAX_REQUEST:
        raise ProtocolError(f"request of {len(out)} bytes exceeds the limit of {MAX_REQUEST}")
    return out


def decode_request(data: bytes) -> Request:
    if len(data) > MAX_REQUEST:
        raise ProtocolError(f"request of {len(data)} bytes exceeds the limit of {MAX_REQUEST}")
    if not data.startswith(MAGIC):
        raise ProtocolError("request does not start with the protocol magic")
    pos = len(MAGIC)
    env: dict[str, str] = {}
    while True:
        end = data.find(b"\0", pos)
        if end < 0:
            raise ProtocolError("environment block is not terminated")
        entry = data[pos:end]
        pos = end + 1
        if not entry:
            break
        key, sep, value = entry.partition(b"=")
        if not sep or not key:
            raise ProtocolError("environment entry is not KEY=VALUE")
        try:
            k, v = key.decode("ascii"), value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError("environment entry is not valid text") from exc
        if len(v) > MAX_ENV_VALUE:
            raise ProtocolError(f"environment variable {k} is longer than {MAX_ENV_VALUE} bytes")
        if k in FORWARDED_ENV:
            env[k] = v
    return Request(env=env, stdin=data[pos:])


def encode_response(exit_code: int, stdout: bytes) -> bytes:
    if not 0 <= exit_code <= 255:
        raise ProtocolError(f"exit code {exit_code} is outside 0..255")
    return MAGIC + str(exit_code).encode("ascii") + b"\n" + stdout


def decode_response(data: bytes) -> Response:
    if not data.startswith(MAGIC):
        raise ProtocolError("response does not start with the protocol magic")
    head, sep, body = data[len(MAGIC) :].partition(b"\n")
    if not sep or not head.isdigit() or len(head) > 3 or int(head) > 255:
        raise ProtocolError("response has no valid exit status line")
    return Response(exit_code=int(head), stdout=body)
