"""cffi build script: compiles csrc/*.c into the ``egw._native`` extension.

The cdef is the part of ``egw_nl.h`` between the EGW_CDEF_BEGIN/END markers, so the header
is the single description of the C interface (see the prose at its top).
"""

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
HEADER = HERE / "egw_nl.h"
SOURCES = sorted(str(p.relative_to(HERE.parent)) for p in HERE.glob("*.c"))


def cdef_text(header: Path = HEADER) -> str:
    text = header.read_text()
    begin = text.index("/* EGW_CDEF_BEGIN */") + len("/* EGW_CDEF_BEGIN */")
    end = text.index("/* EGW_CDEF_END */")
    return text[begin:end]


ffibuilder = FFI()
ffibuilder.cdef(cdef_text())
ffibuilder.set_source(
    "egw._native",
    '#include "egw_nl.h"',
    sources=SOURCES,
    include_dirs=[str(HERE.relative_to(HERE.parent))],
    extra_compile_args=["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
