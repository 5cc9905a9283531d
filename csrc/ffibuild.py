"""cffi build script: compiles csrc/*.c into the ``egw._native`` extension.

The cdef is the part of ``egw_nl.h`` between the EGW_CDEF_BEGIN/END markers, so the header
is the single description of the C interface (see the prose at its top).

Build knob (mk/native.mk): ``python csrc/ffibuild.py --sanitize OUTDIR`` builds the same sources
with AddressSanitizer + UndefinedBehaviorSanitizer as the top-level module ``_egw_native_asan`` in
OUTDIR; egw/dataplane/_native.py loads it instead of ``egw._native`` when the environment variable
EGW_NATIVE_MODULE names it (tests and fuzzing only, with libasan preloaded).
"""

import sys
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
HEADER = HERE / "egw_nl.h"
SOURCES = sorted(str(p.relative_to(HERE.parent)) for p in HERE.glob("*.c"))
CFLAGS = ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g", "-O1"]


def cdef_text(header: Path = HEADER) -> str:
    text = header.read_text()
    begin = text.index("/* EGW_CDEF_BEGIN */") + len("/* EGW_CDEF_BEGIN */")
    end = text.index("/* EGW_CDEF_END */")
    return text[begin:end]


def make_builder(module: str = "egw._native", extra: tuple[str, ...] = (), sources: list[str] | None = None) -> FFI:
    ffi = FFI()
    ffi.cdef(cdef_text())
    ffi.set_source(
        module,
        '#include "egw_nl.h"',
        sources=sources or SOURCES,
        include_dirs=[str(HERE)],
        extra_compile_args=[*CFLAGS, *extra],
        extra_link_args=list(extra),
    )
    return ffi


ffibuilder = make_builder()

if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--sanitize":
        out = Path(sys.argv[2]).resolve()
        out.mkdir(parents=True, exist_ok=True)
        abs_sources = [str(HERE / Path(s).name) for s in SOURCES]
        make_builder("_egw_native_asan", tuple(SANITIZE), abs_sources).compile(tmpdir=str(out), verbose=False)
    else:
        ffibuilder.compile(verbose=True)
