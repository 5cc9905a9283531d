"""cni-manager's unix-socket endpoint for the ``kube-egress-gateway-cni`` front end (reliability.md §5.3).

Security: the socket lives in a dedicated directory that is made root-only (0700) and is itself 0600;
every accepted connection is checked with ``SO_PEERCRED`` (uid must be in ``allowed_uids``, root by
default) before a byte is read. It is never a TCP port: upstream's ``:50051`` let any pod reaching a node
IP create or delete PodEndpoints.

Robustness: one thread per connection from a bounded pool (``max_workers``; excess connections wait in
the listen backlog), a read deadline and a size cap on the request, and a per-pod lock so ADD and DEL of
the same pod never interleave (the runtime serialises per container, not per pod). The handler's
answer is written back verbatim; a handler that raises ``plugin.Crash`` (test fault injection) gets its
connection closed without an answer, exactly as if the plugin had been killed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from egw.model import cniproto

log = logging.getLogger("egw.cni.server")

Handler = Callable[[cniproto.Request], cniproto.Response]


def prepare_socket_dir(path: Path) -> None:
    """Create the socket's directory root-only; refuse one that others own or can write."""
    d = path.parent
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = d.stat()
    if st.st_uid != os.geteuid():
        raise PermissionError(f"socket directory {d} is owned by uid {st.st_uid}, not by us")
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(d, 0o700)


class ShimServer:
    def __init__(
        self,
        path: str | os.PathLike[str],
        handler: Handler,
        *,
        allowed_uids: frozenset[int] = frozenset({0}),
        max_workers: int = 16,
        read_timeout: float = 5.0,
        socket_mode: int = 0o600,
    ) -> None:
        self.path = Path(path)
        self.handler = handler
        self.allowed_uids = allowed_uids
        self.read_timeout = read_timeout
        self.socket_mode = socket_mode
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="egw-cni")
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.rejected = 0
        self.served = 0

    def start(self) -> ShimServer:
        prepare_socket_dir(self.path)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        old = os.umask(0o177)  # the socket is born 0600: no window where others could connect
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, self.socket_mode)
        sock.listen(128)
        sock.settimeout(0.5)
        self._sock = sock
        self._thread = threading.Thread(target=self._accept_loop, name="egw-cni-accept", daemon=True)
        self._thread.start()
        log.info("serving the CNI front end on unix:%s", self.path)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._sock:
            with contextlib.suppress(OSError):  # wake accept() now rather than at its next timeout
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(str(self.path))
        if self._thread:
            self._thread.join(5)
        if self._sock:
            self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._pool.shutdown(wait=True, cancel_futures=False)

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                log.exception("accept failed")
                time.sleep(0.1)
                continue
            self._pool.submit(self._serve, conn)

    def _peer_uid(self, conn: socket.socket) -> int:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        return int(uid)

    def _serve(self, conn: socket.socket) -> None:
        from egw.cni.plugin import Crash

        with conn:
            uid = self._peer_uid(conn)
            if uid not in self.allowed_uids:
                self.rejected += 1
                log.warning("refused a CNI connection from uid %d", uid)
                return
            try:
                data = self._read(conn)
                req = cniproto.decode_request(data)
            except (cniproto.ProtocolError, OSError) as exc:
                log.warning("bad CNI request: %s", exc)
                return
            try:
                resp = self.handler(req)
            except Crash:
                return
            except Exception:
                log.exception("CNI handler failed")
                return
            with contextlib.suppress(OSError):
                conn.settimeout(self.read_timeout)
                conn.sendall(cniproto.encode_response(resp.exit_code, resp.stdout))
            self.served += 1

    def _read(self, conn: socket.socket) -> bytes:
        deadline = time.monotonic() + self.read_timeout
        chunks: list[bytes] = []
        size = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise cniproto.ProtocolError("request not complete within the read deadline")
            conn.settimeout(left)
            chunk = conn.recv(65536)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > cniproto.MAX_REQUEST:
                raise cniproto.ProtocolError("request too large")
            chunks.append(chunk)


class KeyedLocks:
    """One lock per key (pod), created on demand and dropped when unused."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    @contextlib.contextmanager
    def hold(self, key: str):  # type: ignore[no-untyped-def]
        with self._guard:
            lock, n = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, n + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, n = self._locks[key]
                if n <= 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, n - 1)
