"""TLS-PSK to the Zabbix server or proxy, as a zabbix_utils Sender socket wrapper.

Python's ssl module has PSK callbacks only from 3.13; sslpsk3 provides the same SSLContext API on
3.11 and 3.12 (and defers to the standard library on 3.13+). Zabbix's rules for the key: at least
32 hex digits (16 bytes), at most 512; the identity is at most 128 UTF-8 characters.
"""
from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Callable

HEX = re.compile(r"(?:[0-9a-fA-F]{2}){16,256}")


def psk_problem(identity: str, key_hex: str) -> str | None:
    """Why Zabbix would not accept this identity and key (never quoting the key), or None."""
    if not identity or len(identity) > 128:
        return "the PSK identity must be 1 to 128 characters"
    if not HEX.fullmatch(key_hex):
        return "the PSK must be an even number of hex digits, 32 to 512 of them (openssl rand -hex 32 makes one)"
    return None


def psk_socket_wrapper(identity: str, key_hex: str) -> Callable[[socket.socket, object], socket.socket]:
    try:
        from sslpsk3 import SSLPSKContext
    except ImportError:
        raise RuntimeError("TLS-PSK to Zabbix needs the sslpsk3 package (pip install sslpsk3)") from None
    key = bytes.fromhex(key_hex)

    def wrap(conn: socket.socket, _tls: object) -> socket.socket:
        ctx = SSLPSKContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE          # PSK authenticates both ends; there is no certificate
        ctx.set_ciphers("PSK")
        ctx.set_psk_client_callback(lambda _hint: (identity, key))
        wrapped: socket.socket = ctx.wrap_socket(conn)
        return wrapped
    return wrap
