"""A minimal DNS client for tests: one question over UDP, the answer's rcode and A/AAAA addresses.

Built by hand (RFC 1035 §4.1) so tests talk to Envoy's DNS filter with nothing but the socket module.
"""

from __future__ import annotations

import ipaddress
import random
import socket
import struct
from dataclasses import dataclass

A, AAAA = 1, 28
NOERROR, NXDOMAIN = 0, 3


@dataclass(frozen=True)
class Answer:
    rcode: int
    addresses: tuple[str, ...]


def query_packet(name: str, qtype: int, txid: int) -> bytes:
    """Header (id, RD set, one question) + QNAME as length-prefixed labels + QTYPE + QCLASS IN."""
    header = struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 0)
    qname = b"".join(bytes([len(label)]) + label.encode() for label in name.rstrip(".").split(".")) + b"\0"
    return header + qname + struct.pack("!HH", qtype, 1)


def _skip_name(data: bytes, pos: int) -> int:
    while True:
        length = data[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:  # a compression pointer ends the name
            return pos + 2
        pos += 1 + length


def parse_answer(data: bytes, txid: int) -> Answer:
    ident, flags, qdcount, ancount, _, _ = struct.unpack("!HHHHHH", data[:12])
    if ident != txid:
        raise ValueError(f"answer id {ident} != query id {txid}")
    pos = 12
    for _ in range(qdcount):
        pos = _skip_name(data, pos) + 4
    addresses = []
    for _ in range(ancount):
        pos = _skip_name(data, pos)
        rtype, _, _, rdlength = struct.unpack("!HHIH", data[pos : pos + 10])
        pos += 10
        rdata = data[pos : pos + rdlength]
        pos += rdlength
        if rtype in (A, AAAA):
            addresses.append(str(ipaddress.ip_address(rdata)))
    return Answer(flags & 0xF, tuple(addresses))


def resolve(name: str, port: int, qtype: int = A, host: str = "127.0.0.1", timeout: float = 1.0) -> Answer:
    """Ask ``host:port`` once; raises TimeoutError when nothing answers (e.g. the listener is not up yet)."""
    txid = random.randrange(1, 0xFFFF)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(query_packet(name, qtype, txid), (host, port))
        data, _ = sock.recvfrom(4096)
    return parse_answer(data, txid)
