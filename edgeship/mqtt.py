"""Connecting to the MQTT broker devices report to: one place for the URL, the credentials and
TLS, used by the device's reporter and by the fleet side that reads the reports. paho-mqtt is
imported only when a client is made."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from edgeship.contract import DEFAULT_TOPIC_PREFIX
from edgeship.errors import InputError

if TYPE_CHECKING:
    from paho.mqtt.client import Client

#: The MQTT ports of an ``mqtt://`` and an ``mqtts://`` URL without one.
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True)
class BrokerLogin:
    """Where and as whom a device (or the fleet reader) connects: ``mqtt://HOST[:PORT]`` or
    ``mqtts://HOST[:PORT]`` (TLS, verified against ``ca_file``, or the system CAs)."""

    url: str
    username: str
    password: str | None = None
    ca_file: str | None = None
    prefix: str = DEFAULT_TOPIC_PREFIX

    def endpoint(self) -> tuple[str, int, bool]:
        parts = urlsplit(self.url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise InputError(f"{self.url}: a broker URL is mqtt://HOST[:PORT] or "
                             "mqtts://HOST[:PORT]")
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError:
            raise InputError(f"{self.url}: the port is not a number") from None
        return parts.hostname, port, parts.scheme == "mqtts"

    def client(self, client_id: str) -> Client:
        """A paho-mqtt client set up with these credentials (not yet connected)."""
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        _, _, tls = self.endpoint()  # which also refuses a malformed URL before any client
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        client.username_pw_set(self.username, self.password)
        if tls:
            # paho types cert_reqs with ssl's VerifyMode behind a guarded import (ssl may be
            # absent), which leaves that one parameter Unknown to a checker
            client.tls_set(ca_certs=self.ca_file)  # pyright: ignore[reportUnknownMemberType]
        client.reconnect_delay_set(min_delay=1, max_delay=300)
        return client


def read_password(path: str | None) -> str | None:
    """A password from a file (never from the command line, where ``ps`` shows it)."""
    if not path:
        return None
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as e:
        raise InputError(f"{path}: cannot read the password ({e.strerror})") from None
