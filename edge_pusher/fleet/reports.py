"""Reading the devices' retained reports from the broker: the fleet's twins.

A report is what one device says of itself, so each is checked before it counts: its topic must
name the device id it carries (the broker's ACL already keeps a device to its own topic), and
its fields must have their declared shapes. A report that fails is skipped and said, never
guessed at; a device can lie about itself, never about another.
"""

from __future__ import annotations

import re
import ssl
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from edgeship.contract import (
    REPORT_SCHEMA_VERSION,
    DeviceReport,
    check_name,
    check_version,
    devices_filter,
    is_object,
    load_json,
    shown,
    topic_device_id,
)
from edgeship.edge_pusher.fleet.registry import FLEET_READER
from edgeship.edge_pusher.fleet.status import refusal_key
from edgeship.errors import OtaError
from edgeship.mqtt import BrokerLogin

if TYPE_CHECKING:
    from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessage
    from paho.mqtt.properties import Properties
    from paho.mqtt.reasoncodes import ReasonCode

#: A report is about 500 bytes; one this large is not a report (the broker refuses larger
#: packets too: broker-config's max_packet_size).
MAX_REPORT_BYTES = 64 * 1024
#: How long the fleet reader waits for the broker to connect and hand over the reports (s).
BROKER_WAIT_SECONDS = 60.0
#: Refusals read from one report: a device reports its newest 50 (``device.report``), so more
#: is not a device's report; the rest are cut (and said), so that one report cannot add a
#: thousand rows to the table, the page and every line of the history.
MAX_REFUSALS = 50
#: What a refusal reason looks like: a code. Anything else (free text that would read as
#: table cells, "self-test-failed 37, ...", or lookalike hyphens) is shown as ``other``.
REASON_CODE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")  # at most 64 characters
#: How long to wait for the broker's answer to connect and subscribe.
CONNECT_SECONDS = 10.0
#: Retained reports arrive right after the subscription (flagged retained; live ones are not).
#: The reader then publishes a marker to its own topic, which its subscription also covers:
#: the broker queues it behind every retained report, so when it comes back, all have. Only if
#: the marker never returns (a reader user the ACL lets write nothing) does the read end after
#: this long without a retained report (a loaded broker can pause longer than half a second in
#: the middle of a large fleet's reports, which once cut a read of 1,500 to 157).
QUIET_SECONDS = 5.0


@dataclass
class FleetReports:
    """Every device's last report (device id -> report) and what was skipped, and why."""

    reports: dict[str, DeviceReport] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    #: What was cut from kept reports (refusals over the cap, malformed refusal keys).
    cut: list[str] = field(default_factory=list)
    messages: int = 0
    read_at: float = 0.0


@dataclass
class _ReadState:
    """Where one read of the reports stands, as the client's callbacks leave it."""

    last: float  # when the last retained report (or the subscription) came
    subscribed: bool = False
    refused: str | None = None  # why the broker refused the reader
    end: bool = False  # the end marker came back
    done: bool = False  # the read is over (a disconnect now is ours)


def _is_version(value: object) -> bool:
    """A version as devices hold them: an int 1 .. 2**63 - 1 (a 4,000-digit one would widen
    every line of the status table and the history)."""
    if not isinstance(value, int) or isinstance(value, bool):
        return False
    try:
        check_version(value)
    except OtaError:
        return False
    return True


def _is_name(value: object) -> bool:
    try:
        check_name("name", value)
    except OtaError:
        return False
    return True


def trim(report: DeviceReport) -> str | None:
    """Cut what no honest report holds and nothing counts: refusal keys that are not
    ``name/version/hardware`` of names, refusals beyond :data:`MAX_REFUSALS` (in the order the
    device sent them: its newest first); a reason that is not a refusal code reads ``other``.
    Says what it cut, or None."""
    refused = report.get("refused") or {}
    kept: dict[str, str] = {}
    malformed = 0
    for key, reason in refused.items():
        parsed = refusal_key(key)
        if parsed is None or not (_is_name(parsed[0]) and _is_name(parsed[2])):
            malformed += 1
        elif len(kept) < MAX_REFUSALS:
            kept[key] = reason if REASON_CODE.fullmatch(reason) else "other"
    if kept == refused:
        return None
    report["refused"] = kept
    over = len(refused) - malformed - len(kept)
    odd = sum(not REASON_CODE.fullmatch(refused[key]) for key in kept)
    said = [f"{malformed} malformed keys" if malformed else "",
            f"{over} over {MAX_REFUSALS}" if over else "",
            f"{odd} reasons that are not refusal codes shown as 'other'" if odd else ""]
    return f"{len(refused)} refusals, {len(kept)} kept ({'; '.join(w for w in said if w)})"


def report_problem(report: object, device_id: str) -> str | None:
    """What is wrong with a device's report, or None when it has the declared shape."""
    if not is_object(report):
        return "not a JSON object"
    if report.get("schema_version") != REPORT_SCHEMA_VERSION:
        return f"schema_version {report.get('schema_version')!r}, not {REPORT_SCHEMA_VERSION}"
    if report.get("device_id") != device_id:
        return f"says it is device {report.get('device_id')!r}"
    for key in ("hardware", "channel"):
        try:
            check_name(key, report.get(key))
        except OtaError as e:
            return str(e)
    active = report.get("active")
    if active is not None and not (is_object(active) and _is_name(active.get("name"))
                                   and _is_version(active.get("version"))):
        return "active is not a model name and version"
    refused = report.get("refused", {})
    if not (is_object(refused) and all(isinstance(v, str) for v in refused.values())):
        return "refused is not build -> reason"
    health = report.get("health")
    if health is not None and not (is_object(health) and health.get("state") in (
            "healthy", "unhealthy") and _is_version(health.get("version"))):
        return "health is not a state and version"
    if not is_object(report.get("last_result", {})):
        return "last_result is not an object"
    return None


def parse(topic: str, payload: bytes | bytearray, prefix: str
          ) -> tuple[str, DeviceReport, str | None] | str:
    """(device id, report, what was cut from it or None), or why the message is skipped
    (device-supplied text in it escaped and cut: it is shown to the operator)."""
    device_id = topic_device_id(topic, prefix)
    if device_id is None:
        return f"{shown(topic, 160)}: not a device report topic"
    if device_id == FLEET_READER:  # the ACL's device pattern lets the reader write it
        return f"{topic}: the fleet reader's own topic, not a device's"
    if not payload:  # a cleared retained message: the device was removed
        return f"{topic}: empty"
    if len(payload) > MAX_REPORT_BYTES:
        return f"{topic}: {len(payload)} bytes, over {MAX_REPORT_BYTES}"
    try:
        report = load_json(payload)
    except (ValueError, UnicodeDecodeError) as e:
        return f"{topic}: not JSON ({shown(str(e), 80)})"
    problem = report_problem(report, device_id)
    if problem:
        return f"{topic}: {shown(problem, 160)}"
    checked = cast(DeviceReport, report)  # report_problem found every typed field well formed
    return device_id, checked, trim(checked)


def read_reports(login: BrokerLogin, quiet: float = QUIET_SECONDS,
                 wait: float = BROKER_WAIT_SECONDS) -> FleetReports:
    """Connect as the fleet reader, take every retained report, and disconnect. The broker
    out of reach, or refusing the reader, is an :class:`OtaError`: a watcher must see that
    it has no data, not an empty fleet."""

    host, port, _ = login.endpoint()
    client = login.client(f"edgeship-fleet-{uuid.uuid4().hex[:8]}")
    got = FleetReports()
    state = _ReadState(last=time.monotonic())
    marker_topic = f"{login.prefix}/devices/{login.username}/state"
    marker = f"edgeship-fleet-reader-end {uuid.uuid4().hex}".encode()

    def on_connect(client: Client, userdata: Any, flags: ConnectFlags, reason_code: ReasonCode,
                   properties: Properties | None) -> None:
        if reason_code.is_failure:
            state.refused = str(reason_code)
            return
        client.subscribe(devices_filter(login.prefix), qos=1)

    def on_subscribe(client: Client, userdata: Any, mid: int, reason_codes: list[ReasonCode],
                     properties: Properties | None) -> None:
        if any(rc.is_failure for rc in reason_codes):
            state.refused = f"subscription refused ({reason_codes[0]})"
        state.subscribed = True
        state.last = time.monotonic()
        client.publish(marker_topic, marker, qos=1, retain=False)

    def on_message(client: Client, userdata: Any, message: MQTTMessage) -> None:
        if message.topic == marker_topic and message.payload == marker:
            state.end = True  # queued behind every retained report: all have come
            return
        got.messages += 1
        if message.retain:  # what the subscription delivers; live reports do not delay the end
            state.last = time.monotonic()
        parsed = parse(message.topic, message.payload, login.prefix)
        if isinstance(parsed, str):
            got.skipped.append(parsed)
        else:
            got.reports[parsed[0]] = parsed[1]
            if parsed[2]:
                got.cut.append(f"{message.topic}: {parsed[2]}")

    def on_disconnect(client: Client, userdata: Any, flags: DisconnectFlags,
                      reason_code: ReasonCode, properties: Properties | None) -> None:
        if not state.done and not state.refused:  # e.g. a second reader, same user
            state.refused = f"the broker closed the connection ({reason_code})"

    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, \
        on_message
    client.on_disconnect = on_disconnect
    try:
        client.connect(host, port, keepalive=30)
    except ssl.SSLError as e:  # before OSError, which it is
        hint = ""
        if isinstance(e, ssl.SSLCertVerificationError):
            hint = ("; give the CA certificate that signed the broker's with --ca FILE"
                    if not login.ca_file else f"; is {login.ca_file} (--ca) the CA that "
                    "signed the broker's certificate?")
        raise OtaError(f"TLS with the broker at {login.url} failed: {e.reason or e}{hint}"
                       ) from None
    except OSError as e:
        raise OtaError(f"cannot reach the broker at {login.url}: {e.strerror or e}") from None
    started = time.monotonic()
    try:
        while True:
            client.loop(timeout=0.05)
            now = time.monotonic()
            if state.refused:
                raise OtaError(f"the broker at {login.url} refused the fleet reader "
                               f"{login.username!r}: {state.refused}")
            if state.end or (state.subscribed and now - state.last >= quiet):
                break
            if not state.subscribed and now - started > CONNECT_SECONDS:
                raise OtaError(f"the broker at {login.url} did not answer within "
                               f"{CONNECT_SECONDS:g} s")
            if now - started > wait:  # still arriving: a partial fleet is not the fleet
                raise OtaError(f"the broker at {login.url} was still sending reports after "
                               f"{wait:g} s ({len(got.reports)} so far); the read is incomplete")
    finally:
        state.done = True
        client.disconnect()
    got.read_at = time.time()
    return got
