"""A tiny, independent netlink TLV writer for golden-byte expectations (tests only).

Kept deliberately naive (one line per concept) so the expected layouts in the tests read like the
attribute trees in linux/wireguard.h and linux/rtnetlink.h, and share no code with csrc/.
"""

from __future__ import annotations

import struct

NLA_F_NESTED = 0x8000


def pad(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def attr(atype: int, payload: bytes) -> bytes:
    return pad(struct.pack("=HH", 4 + len(payload), atype) + payload)


def nest(atype: int, *children: bytes) -> bytes:
    body = b"".join(children)
    return struct.pack("=HH", 4 + len(body), atype | NLA_F_NESTED) + body


def u8(atype: int, v: int) -> bytes:
    return attr(atype, struct.pack("=B", v))


def u16(atype: int, v: int) -> bytes:
    return attr(atype, struct.pack("=H", v))


def u32(atype: int, v: int) -> bytes:
    return attr(atype, struct.pack("=I", v))


def u64(atype: int, v: int) -> bytes:
    return attr(atype, struct.pack("=Q", v))


def nlmsg(mtype: int, flags: int, seq: int, body: bytes, pid: int = 0) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), mtype, flags, seq, pid) + body


def genl(cmd: int, version: int = 1) -> bytes:
    return struct.pack("=BBH", cmd, version, 0)
