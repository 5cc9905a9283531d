"""Fuzz the C decoders (egw_wg_parse, egw_uapi_parse, egw_rt_parse) with atheris.

Run by mk/native.mk (``make native-fuzz``, part of ``make test``) for a bounded number of inputs per
decoder, against the AddressSanitizer build when EGW_NATIVE_MODULE=_egw_native_asan (libasan
preloaded), so an out-of-bounds read is a crash, not silence. Inputs start from the golden corpora:
captured rtnetlink dumps, a hand-laid multi-part WireGuard dump, and a wireguard-go reply. Output
arrays are deliberately tiny sometimes, so the -ENOSPC counting paths run too.

Usage: python tests/native/fuzz_decoders.py {wg,uapi,rt} RUNS [libFuzzer flags]

The C code is not coverage-instrumented (gcc has no libFuzzer coverage mode), so mutation is guided
only by the seeds and Python-side coverage: a bounded smoke fuzz under ASan, not a coverage campaign.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from egw.dataplane._native import ffi, lib

ROOT = Path(__file__).resolve().parents[2]


def wg(data: bytes) -> None:
    cap = 1 + (data[0] % 8 if data else 0)
    dev = ffi.new("struct egw_wg_device *")
    peers = ffi.new("struct egw_wg_peer[]", cap)
    aips = ffi.new("struct egw_wg_aip[]", cap)
    n_p = ffi.new("uint32_t *", cap)
    n_a = ffi.new("uint32_t *", cap)
    buf = ffi.from_buffer(data)
    lib.egw_wg_parse(buf, len(data), dev, peers, n_p, aips, n_a)
    assert n_p[0] <= len(data) and n_a[0] <= len(data)


def uapi(data: bytes) -> None:
    cap = 1 + (data[0] % 8 if data else 0)
    dev = ffi.new("struct egw_wg_device *")
    peers = ffi.new("struct egw_wg_peer[]", cap)
    aips = ffi.new("struct egw_wg_aip[]", cap)
    n_p = ffi.new("uint32_t *", cap)
    n_a = ffi.new("uint32_t *", cap)
    lib.egw_uapi_parse(ffi.from_buffer(data), len(data), dev, peers, n_p, aips, n_a)


def rt(data: bytes) -> None:
    cap = 1 + (data[0] % 8 if data else 0)
    ops = ffi.new("struct egw_rt_op[]", cap)
    n = ffi.new("uint32_t *", cap)
    lib.egw_rt_parse(ffi.from_buffer(data), len(data), ops, n)


TARGETS = {"wg": wg, "uapi": uapi, "rt": rt}


def seeds(target: str) -> list[bytes]:
    sys.path.insert(0, str(ROOT))
    if target == "rt":
        data = ROOT / "tests" / "native" / "data"
        return [bytes.fromhex(f.read_text().splitlines()[1]) for f in sorted(data.glob("*_dump.hex"))]
    if target == "wg":
        from tests.native.test_golden_wg import dump_reply

        return [dump_reply()]
    from tests.native.test_golden_uapi import REPLY

    return [REPLY.encode()]


def main() -> None:
    target = sys.argv.pop(1)
    runs = int(sys.argv.pop(1))
    inner = TARGETS[target]
    done = [0]

    def fn(data: bytes) -> None:
        inner(data)
        done[0] += 1
        if done[0] >= runs:
            # leave before libFuzzer's own exit path, which trips gcc's ASan interceptors in pybind11
            print(f"fuzz {target}: {runs} inputs, no crash", flush=True)
            os._exit(0)

    corpus = ROOT / "build" / "fuzz" / target
    corpus.mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(seeds(target)):
        (corpus / f"seed{i}").write_bytes(s)
        inner(s)  # seeds must decode without crashing before we mutate them
    atheris.Setup([sys.argv[0], *sys.argv[1:], str(corpus)], fn)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
