"""What a device tells its fleet, and how: a small JSON report, published over MQTT as a retained
message on the device's own topic, so that the broker keeps the last one (the device's twin).

Reporting is optional and never blocks or fails a poll: :class:`MqttReporter` hands the report to
paho-mqtt's network thread and returns; while the broker is out of reach paho reconnects on its
own, and the newest report is published once it is back (older ones are superseded, so they
are dropped). A report only describes the device; it never changes what the device may install
(that is the signed repository's alone).

The report (``REPORT_SCHEMA_VERSION`` 1)::

    {"schema_version": 1, "device_id": "pump-7", "hardware": "cpu", "channel": "stable",
     "agent_version": "0.1.0", "time": "2026-11-30T04:40:00Z",
     "active": {"name": "sensor", "version": 3, "sha256": "...", "verified": true} | null,
     "previous": {"name": "sensor", "version": 2} | null,
     "last_check": "...", "last_result": {"action": "updated", "reason": null},
     "self_test": "passed" | "failed" | null,
     "refused": {"sensor/4/cpu": "self-test-failed", ...},
     "health": {"state": "unhealthy", "reason": "...", "name": "sensor", "version": 3,
                "at": "..."} | null}
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from edgeship._version import VERSION
from edgeship.contract import REPORT_SCHEMA_VERSION, device_topic
from edgeship.device.state import StateDir, device_status, now_iso
from edgeship.mqtt import BrokerLogin

if TYPE_CHECKING:  # paho is imported where a client is made (edgeship.mqtt), not here
    from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessageInfo
    from paho.mqtt.properties import Properties
    from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger(__name__)

#: Refusals a report carries (the newest): keeps a report small however long a device lives.
MAX_REFUSED = 50
#: Poll reasons that mean a downloaded build failed its checks on this device.
SELF_TEST_FAILURES = ("self-test-failed", "model-load-failed")


def build_report(state_dir: str, identity: dict[str, Any] | None = None) -> dict[str, Any]:
    """The device's report, from its state folder alone (as ``device status`` reads it)."""
    status = device_status(state_dir, identity)
    active = status["active"]
    last: dict[str, Any] = status["last_result"] or {}
    bad = StateDir(state_dir).bad_versions()
    newest = sorted(bad, key=lambda key: str(bad[key].get("at", "")))[-MAX_REFUSED:]
    refused = {key: bad[key]["reason"] for key in sorted(newest)}
    self_test = ("failed" if last.get("reason") in SELF_TEST_FAILURES else
                 "passed" if last.get("action") == "updated" else None)
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "device_id": status["device_id"],
        "hardware": status["hardware"],
        "channel": status["channel"],
        "agent_version": VERSION,
        "time": now_iso(),
        "active": None if active is None else {
            "name": active["name"], "version": active["version"], "sha256": active["sha256"],
            "verified": bool(active.get("verified"))},
        "previous": None if status["previous"] is None else {
            "name": status["previous"]["name"], "version": status["previous"]["version"]},
        "last_check": status["last_check"],
        "last_result": {"action": last.get("action"), "reason": last.get("reason")},
        "self_test": self_test,
        "refused": refused,
        "health": status["health"],
    }


def _payload(report: dict[str, Any]) -> bytes:
    """A report as it goes on the wire: compact JSON, keys sorted."""
    return json.dumps(report, sort_keys=True, separators=(",", ":")).encode()


class MqttReporter:
    """Publishes a device's reports as retained QoS 1 messages on its own topic, from paho's
    network thread: :meth:`publish` returns at once, whatever the broker does."""

    def __init__(self, login: BrokerLogin, device_id: str,
                 source: Callable[[], dict[str, Any]] | None = None):
        """``source`` builds the device's report afresh (``lambda: build_report(state_dir)``):
        on every (re)connect the reporter publishes what it returns rather than the report it
        holds, which another writer of the same twin (``report-health`` from another process,
        connecting as the same user) may have superseded meanwhile."""
        self.topic = device_topic(device_id, login.prefix)
        self._source = source
        self._client = login.client(f"edgeship-device-{device_id}")
        self._lock = threading.Lock()
        self._latest: bytes | None = None
        self._sent: MQTTMessageInfo | None = None  # of the newest publish
        self._connected = False
        #: Reports handed over and their bytes (payloads), to meter a device's link, and how
        #: often the broker accepted a connection.
        self.reports = 0
        self.bytes = 0
        self.connects = 0
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        host, port, _ = login.endpoint()
        self._client.connect_async(host, port, keepalive=60)
        self._client.loop_start()

    def publish(self, report: dict[str, Any]) -> None:
        """Hand ``report`` to the broker when it can be reached; never raises, never waits."""
        payload = _payload(report)
        with self._lock:
            self._latest = payload
            self.reports += 1
            self.bytes += len(payload)
            if self._connected:
                self._send()

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the broker to acknowledge the newest report
        (for one-shot polls that exit right after); True if it did."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                sent = self._sent
            try:
                if sent is not None and sent.is_published():
                    return True
            except (RuntimeError, ValueError):  # published while disconnected: not sent
                return False
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _send(self) -> None:
        info = self._client.publish(self.topic, self._latest, qos=1, retain=True)
        self._sent = info

    def _on_connect(self, client: Client, userdata: Any, flags: ConnectFlags,
                    reason_code: ReasonCode, properties: Properties | None) -> None:
        if reason_code.is_failure:
            log.warning("report broker refused the connection: %s", reason_code)
            return
        fresh = None
        if self._source is not None:
            try:
                fresh = _payload(self._source())
            except Exception as e:  # noqa: BLE001 - then the held report goes out
                log.warning("report not rebuilt: %s", e)
        with self._lock:
            self._connected = True
            self.connects += 1
            if fresh is not None and self._latest is not None:
                self._latest = fresh
            if self._latest is not None:  # what changed while the broker was away
                self._send()

    def _on_disconnect(self, client: Client, userdata: Any, flags: DisconnectFlags,
                       reason_code: ReasonCode, properties: Properties | None) -> None:
        with self._lock:
            self._connected = False
