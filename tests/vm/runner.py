"""Kernel-tier VM: a QEMU (TCG) guest running Debian's generic 6.1 kernel over the host's own root.

The host kernel has no WireGuard module and cannot load modules, so tests that need the real
kernel datapath run inside this VM (tests/fixtures/kernel.py batches them; `make vmimage` and
`python -m tests.vm.runner prepare` build the cache; `python -m tests.vm.runner run -- CMD` runs
one command by hand).

Image (cached outside the work tree, ``~/.cache/egw/vm/<kver>/``, or ``$EGW_VM_CACHE``):
``apt-get download linux-image-6.1.0-<N>-amd64`` (the version the current apt lists offer),
``dpkg -x``, ``depmod -b``, plus a tiny uncompressed busybox initramfs whose init
(tests/vm/init.sh) loads virtio/9p/overlay modules, mounts host ``/`` read-only over 9p under a
tmpfs overlay, bind-mounts the extracted ``lib/modules/<kver>`` and a per-run writable share at
``/run/egw-vm``, chroots and runs ``/run/egw-vm/cmd.sh``, then powers off.

Invariants: preparing is idempotent and safe to race (one flock, atomic renames); nothing is
written into the host root (the 9p share is read-only, the guest's writes land in tmpfs); every
run is bounded by a wall-clock timeout after which QEMU is killed; a boot failure is reported with
the console tail, never silently.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import lzma
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

QEMU = "qemu-system-x86_64"
INIT_SCRIPT = Path(__file__).with_name("init.sh")
# Loaded by init in this order (dependencies first are resolved from modules.dep anyway).
INITRD_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay")
KERNEL_PACKAGE_RE = re.compile(r"^linux-image-(6\.1\.0-\d+-amd64)$")
GUEST_RESULTS = "/run/egw-vm"
DEFAULT_MEMORY_MB = 1536
IN_VM_ENV = "EGW_IN_VM"  # set to "1" for every command the VM runs (tests/fixtures/kernel.py reads it)
BASE_ENV = {
    IN_VM_ENV: "1",
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "TERM": "dumb",
}

Log = Callable[[str], None]


class VMUnavailable(RuntimeError):
    """The machine truly cannot provide the VM (no QEMU, the kernel package cannot be fetched)."""


class VMError(RuntimeError):
    """Building the image or booting failed for a reason that is a defect, not a missing capability."""


@dataclass(frozen=True)
class Image:
    kver: str
    kernel: Path  # the uncompressed ELF vmlinux (PVH entry) when it could be extracted, else vmlinuz
    initrd: Path
    modules: Path


@dataclass(frozen=True)
class Result:
    """One VM run. ``rc`` is None when the command never finished (boot failure or timeout)."""

    rc: int | None
    console: str
    rundir: Path
    boot_seconds: float | None  # QEMU start until init starts the command (host clock)
    total_seconds: float
    timed_out: bool
    init_failure: str | None
    boot_timeout: float

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.console.splitlines()[-lines:])


def cache_root() -> Path:
    return Path(os.environ.get("EGW_VM_CACHE") or Path.home() / ".cache" / "egw" / "vm")


def _say(msg: str) -> None:
    print(f">> vmimage: {msg}", flush=True)


def _run(cmd: Sequence[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), check=False, capture_output=True, text=True, **kw)  # type: ignore[call-overload,no-any-return]


def _apt_candidates() -> list[str]:
    """Kernel versions (``6.1.0-N-amd64``) of the generic flavour apt can install, newest first."""
    out = _run(["apt-cache", "depends", "linux-image-amd64"]).stdout
    found = [m.group(1) for line in out.split() if (m := KERNEL_PACKAGE_RE.match(line))]
    if not found:
        out = _run(["apt-cache", "search", "--names-only", r"^linux-image-6\.1\.0-[0-9]+-amd64$"]).stdout
        names = [line.split(" ", 1)[0] for line in out.splitlines()]
        found = [m.group(1) for n in names if (m := KERNEL_PACKAGE_RE.match(n))]
        found.sort(key=lambda v: int(v.split("-")[1]), reverse=True)
    return found


def resolve_kver(log: Log = _say) -> str:
    found = _apt_candidates()
    if not found and shutil.which("apt-get"):
        log("apt lists know no linux-image-6.1.0-*-amd64; running apt-get update")
        _run(["apt-get", "update", "-qq"])
        found = _apt_candidates()
    if not found:
        raise VMUnavailable("apt offers no linux-image-6.1.0-*-amd64 package (Debian 12 apt sources needed)")
    return found[0]


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _fetch_kernel(kver: str, dest: Path, log: Log) -> None:
    """Download, extract and depmod the kernel package into ``dest`` (atomically via a temp dir)."""
    if not shutil.which("apt-get") or not shutil.which("dpkg"):
        raise VMUnavailable("apt-get/dpkg not available: cannot fetch the Debian kernel package")
    tmp = Path(tempfile.mkdtemp(prefix=f".{kver}-", dir=dest.parent))
    try:
        log(f"apt-get download linux-image-{kver}")
        got = _run(["apt-get", "download", f"linux-image-{kver}"], cwd=tmp)
        debs = list(tmp.glob("*.deb"))
        if got.returncode != 0 or not debs:
            raise VMUnavailable(f"apt-get download linux-image-{kver} failed: {got.stderr.strip()[-500:]}")
        log(f"dpkg -x {debs[0].name}")
        root = tmp / "root"
        if (x := _run(["dpkg", "-x", str(debs[0]), str(root)])).returncode != 0:
            raise VMError(f"dpkg -x failed: {x.stderr.strip()[-500:]}")
        log(f"depmod -b {kver}")
        if (d := _run(["depmod", "-b", str(root), kver])).returncode != 0:
            raise VMError(f"depmod failed: {d.stderr.strip()[-500:]}")
        debs[0].unlink()
        (root / ".debversion").write_text(got.stdout.strip() or kver)
        root.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _module_order(modules_dir: Path, wanted: Sequence[str]) -> list[str]:
    """Paths (relative to ``modules_dir``) of ``wanted`` and their dependencies, dependencies first."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in (modules_dir / "modules.dep").read_text().splitlines():
        path, _, rest = line.partition(":")
        deps[path] = rest.split()
        by_name[Path(path).name.removesuffix(".ko").replace("-", "_")] = path
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        # modules.dep lists a module's dependencies so that the last one must be loaded first.
        for dep in reversed(deps[path]):
            visit(dep)
        order.append(path)

    for name in wanted:
        if name not in by_name:
            raise VMError(f"kernel module {name!r} not found in {modules_dir}/modules.dep")
        visit(by_name[name])
    return order


def _build_initrd(kdir: Path, kver: str, log: Log) -> Path:
    """The busybox initramfs, named by a hash of what goes in so a changed init rebuilds it."""
    busybox = shutil.which("busybox")
    if not busybox:
        raise VMUnavailable("busybox not installed (Debian package busybox-static)")
    modules_dir = kdir / "lib" / "modules" / kver
    order = _module_order(modules_dir, INITRD_MODULES)
    h = hashlib.sha256()
    for part in (INIT_SCRIPT.read_bytes(), Path(busybox).read_bytes(), "\n".join(order).encode()):
        h.update(hashlib.sha256(part).digest())
    initrd = kdir / f"initrd-{h.hexdigest()[:16]}.img"
    if initrd.exists():
        return initrd
    if "statically linked" not in _run(["file", "-L", busybox]).stdout and shutil.which("file"):
        raise VMError(f"{busybox} is not statically linked (install busybox-static)")
    log(f"building initramfs ({len(order)} modules)")
    with tempfile.TemporaryDirectory(prefix=".initrd-", dir=kdir) as tmp:
        t = Path(tmp)
        for d in ("bin", "dev", "proc", "sys", "modules"):
            (t / d).mkdir()
        shutil.copy2(busybox, t / "bin" / "busybox")
        shutil.copy2(INIT_SCRIPT, t / "init")
        (t / "init").chmod(0o755)
        for rel in order:
            shutil.copy2(modules_dir / rel, t / "modules" / Path(rel).name)
        (t / "modules.list").write_text("".join(Path(rel).name + "\n" for rel in order))
        files = sorted(str(p.relative_to(t)) for p in t.rglob("*"))
        out = t.with_suffix(".img")
        with open(out, "wb") as fh:
            cp = subprocess.run(
                ["cpio", "-o", "-H", "newc", "--quiet"], input="\n".join(files).encode(), stdout=fh, cwd=t, check=False
            )
        if cp.returncode != 0:
            raise VMError("cpio failed building the initramfs")
        out.rename(initrd)
    # Other checkouts may still boot an older initramfs (a different init.sh): prune only old ones.
    for old in kdir.glob("initrd-*.img"):
        if old != initrd and time.time() - old.stat().st_mtime > 7 * 86400:
            old.unlink(missing_ok=True)
    return initrd


def _extract_vmlinux(kdir: Path, kver: str, log: Log) -> Path:
    """The uncompressed kernel: QEMU boots its ELF directly through the PVH entry point.

    Under TCG the bzImage's own xz decompressor takes about 3 s of the boot; Python's lzma does it
    once here. Falls back to the bzImage when no xz stream is found (another compression).
    """
    vmlinuz = kdir / "boot" / f"vmlinuz-{kver}"
    vmlinux = kdir / "boot" / f"vmlinux-{kver}"
    if vmlinux.exists():
        return vmlinux
    data = vmlinuz.read_bytes()
    at = data.find(b"\xfd7zXZ\x00")
    if at < 0:
        return vmlinuz
    log("decompressing vmlinuz into vmlinux (PVH boot skips the in-guest decompression)")
    dec = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    elf = dec.decompress(data[at:])
    if not elf.startswith(b"\x7fELF") or b"Xen\x00" not in elf:
        return vmlinuz
    tmp = vmlinux.with_suffix(".tmp")
    tmp.write_bytes(elf)
    tmp.rename(vmlinux)
    return vmlinux


def _image_at(kdir: Path, kver: str, initrd: Path, log: Log) -> Image:
    return Image(kver, _extract_vmlinux(kdir, kver, log), initrd, kdir / "lib" / "modules" / kver)


def prepare(log: Log = _say) -> Image:
    """Make sure the newest available kernel is cached with a current initramfs; return it."""
    if not shutil.which(QEMU):
        raise VMUnavailable(f"{QEMU} not installed (Debian package qemu-system-x86)")
    root = cache_root()
    with _locked(root):
        try:
            kver = resolve_kver(log)
        except VMUnavailable:
            # Offline with a cache from earlier: use what we have rather than skip.
            if cached := current(root):
                return prepare_cached(cached, log)
            raise
        kdir = root / kver
        if kdir.is_dir():
            log(f"kernel {kver} already cached in {kdir}")
        else:
            _fetch_kernel(kver, kdir, log)
        image = _image_at(kdir, kver, _build_initrd(kdir, kver, log), log)
        tmp = root / ".current.tmp"
        tmp.write_text(kver + "\n")
        tmp.rename(root / "current")
        for stale in root.iterdir():
            superseded = stale.is_dir() and stale.name != kver and KERNEL_PACKAGE_RE.match(f"linux-image-{stale.name}")
            # A day's grace: a session that started on the old kernel may still have it mounted.
            if superseded and time.time() - stale.stat().st_mtime > 86400:
                log(f"removing superseded kernel {stale.name}")
                shutil.rmtree(stale, ignore_errors=True)
        log(f"ready: {image.kernel} + {image.initrd.name}")
        return image


def current(root: Path | None = None) -> str | None:
    root = root or cache_root()
    try:
        kver = (root / "current").read_text().strip()
    except FileNotFoundError:
        return None
    return kver if (root / kver / "boot" / f"vmlinuz-{kver}").exists() else None


def prepare_cached(kver: str, log: Log = _say) -> Image:
    kdir = cache_root() / kver
    return _image_at(kdir, kver, _build_initrd(kdir, kver, log), log)


def cached_image(log: Log = _say) -> Image:
    """The image `make vmimage` prepared (no network); prepares one when there is none yet."""
    if not shutil.which(QEMU):
        raise VMUnavailable(f"{QEMU} not installed (Debian package qemu-system-x86)")
    if kver := current():
        with _locked(cache_root()):
            return prepare_cached(kver, log)
    return prepare(log)


RUNDIR_PREFIX = "egw-vm-"


def _sweep_rundirs(max_age: float = 86400.0) -> None:
    """Failed runs keep their directory (console log, reports) for a look; after a day it goes."""
    for d in Path(tempfile.gettempdir()).glob(RUNDIR_PREFIX + "*"):
        with contextlib.suppress(OSError):
            if d.is_dir() and time.time() - d.stat().st_mtime > max_age:
                shutil.rmtree(d, ignore_errors=True)


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _cmd_script(argv: Sequence[str], cwd: str, env: Mapping[str, str]) -> str:
    """The guest's command as a shell script; every value is quoted, names are checked."""
    if bad := [k for k in env if not _ENV_NAME.match(k)]:
        raise ValueError(f"environment variable names not allowed in the VM command: {bad!r}")
    lines = ["# written by tests/vm/runner.py; run by the VM's init inside the chroot", "set -u"]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
    lines += [f"cd {shlex.quote(cwd)} || exit 125", "exec " + shlex.join(argv)]
    return "\n".join(lines) + "\n"


def qemu_argv(
    image: Image, rundir: Path, memory_mb: int = DEFAULT_MEMORY_MB, cpus: int = 1, guest_timeout: int = 0
) -> list[str]:
    """One CPU by default: SMP bring-up under TCG costs about 1 s and the tests are serial anyway.

    ``guest_timeout`` (seconds, 0 = none) makes init kill the command itself, so a VM whose host
    process died cannot run forever.
    """
    append = " ".join(
        [
            "console=ttyS0",
            "quiet",
            "panic=-1",
            "oops=panic",
            "mitigations=off",
            "no_timer_check",
            "i8042.noaux",
            "i8042.nokbd",
            "i8042.nopnp",
            "random.trust_cpu=on",
            f"egw_timeout={guest_timeout}",
        ]
    )
    share = "security_model=none,multidevs=remap"
    return [
        QEMU,
        "-accel",
        "tcg,thread=multi" if cpus > 1 else "tcg",
        "-cpu",
        "max",
        "-smp",
        str(cpus),
        "-m",
        str(memory_mb),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-no-reboot",
        "-kernel",
        str(image.kernel),
        "-initrd",
        str(image.initrd),
        "-append",
        append,
        "-virtfs",
        f"local,path=/,mount_tag=hostroot,readonly=on,{share}",
        "-virtfs",
        f"local,path={image.modules},mount_tag=modules,readonly=on,{share}",
        "-virtfs",
        f"local,path={rundir},mount_tag=results,{share}",
    ]


def run(
    image: Image,
    argv: Sequence[str],
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 300.0,
    boot_timeout: float = 120.0,
    rundir: Path | None = None,
    echo: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
    memory_mb: int = DEFAULT_MEMORY_MB,
) -> Result:
    """Boot the VM, run ``argv`` in ``cwd`` (inside the chroot of the host root), power off.

    The guest sees ``rundir`` (a fresh temp dir unless given) writable at /run/egw-vm; whatever the
    command writes there is left for the caller. QEMU is killed when the command has not started
    after ``boot_timeout`` seconds, after ``timeout`` seconds in all, or when ``cancel`` is set;
    the guest also kills the command itself shortly before ``timeout``, so an orphaned VM ends too.
    """
    _sweep_rundirs()
    rundir = rundir or Path(tempfile.mkdtemp(prefix=RUNDIR_PREFIX))
    (rundir / "cmd.sh").write_text(_cmd_script(argv, cwd or os.getcwd(), {**BASE_ENV, **(env or {})}))
    (rundir / "rc").unlink(missing_ok=True)
    lines: list[str] = []
    boot: list[float] = []
    start = time.monotonic()
    argv_q = qemu_argv(image, rundir, memory_mb, guest_timeout=max(1, int(timeout) - 5))
    if setpriv := shutil.which("setpriv"):
        # QEMU gets its own session (a Ctrl-C meant for pytest must not kill it mid-report), so tie
        # its life to ours instead: SIGKILL when the thread that started it goes away.
        argv_q = [setpriv, "--pdeathsig", "KILL", "--", *argv_q]
    proc = subprocess.Popen(
        argv_q,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def pump() -> None:
        assert proc.stdout is not None
        # Written as it comes, so `tail -f <rundir>/console.log` follows a long batch.
        with open(rundir / "console.log", "w", encoding="utf-8") as log:
            for raw in proc.stdout:
                line = raw.decode(errors="replace").rstrip("\r\n")
                if not boot and line.startswith("EGW-VM-START"):
                    boot.append(time.monotonic() - start)
                lines.append(line)
                log.write(line + "\n")
                log.flush()
                if echo:
                    echo(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    timed_out = False
    try:
        while proc.poll() is None:
            elapsed = time.monotonic() - start
            if elapsed > timeout or (not boot and elapsed > boot_timeout):
                timed_out = True
                break
            if cancel is not None and cancel.is_set():
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.2)
    finally:
        if proc.poll() is None:
            # QEMU leads its own session; kill just that group (ours, by id).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(timeout=5)
    total = time.monotonic() - start
    console = "\n".join(lines)
    rc: int | None = None
    with contextlib.suppress(FileNotFoundError, ValueError):
        rc = int((rundir / "rc").read_text().strip())
    if rc is None and (m := re.search(r"^EGW-VM-EXIT (\d+)", console, re.M)):
        rc = int(m.group(1))
    failure = m.group(1) if (m := re.search(r"^EGW-VM-INIT-FAILED (.*)$", console, re.M)) else None
    return Result(rc, console, rundir, boot[0] if boot else None, total, timed_out, failure, boot_timeout)


def describe_failure(result: Result, what: str = "the VM") -> str:
    """One message for a run that did not produce an exit status: why, and the console tail."""
    if result.timed_out and result.boot_seconds is None:
        why = f"{what} did not start the command within {result.boot_timeout:g}s (boot timeout)"
    elif result.timed_out:
        why = f"{what} timed out after {result.total_seconds:.0f}s"
    elif result.init_failure:
        why = f"{what}'s init failed at: {result.init_failure}"
    elif result.boot_seconds is None:
        why = f"{what} did not boot (QEMU exited before init started the command)"
    else:
        why = f"{what} stopped before the command finished"
    return f"{why}\n--- console tail ({result.rundir}/console.log) ---\n{result.tail()}"


def main(args: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.vm.runner", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("prepare", help="download/extract the kernel and build the initramfs (idempotent)")
    r = sub.add_parser("run", help="boot the VM and run one command inside it")
    r.add_argument("--timeout", type=float, default=300.0)
    r.add_argument("argv", nargs="+")
    ns = p.parse_args(args)
    if ns.cmd == "prepare":
        try:
            prepare()
        except VMUnavailable as e:
            # Not a build failure: the kernel tests will skip and say the same.
            _say(f"WARNING: kernel tier unavailable, its tests will be skipped: {e}")
        return 0
    try:
        image = cached_image()
        res = run(image, ns.argv, timeout=ns.timeout, echo=print)
    except VMUnavailable as e:
        print(f"VM unavailable: {e}", file=sys.stderr)
        return 2
    boot = f"{res.boot_seconds:.2f}s" if res.boot_seconds is not None else "never"
    print(f">> vm: first command after {boot}, total {res.total_seconds:.2f}s, rc={res.rc}", file=sys.stderr)
    if res.rc is None:
        print(describe_failure(res), file=sys.stderr)
        return 125
    shutil.rmtree(res.rundir, ignore_errors=True)
    return res.rc


if __name__ == "__main__":
    sys.exit(main())
