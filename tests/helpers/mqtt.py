"""A real Mosquitto for the fleet tests: its own configuration (``edgeship fleet
broker-config``), on a free 127.0.0.1 port, started and stopped by the test."""

from __future__ import annotations

import getpass
import socket
import subprocess
import time
from pathlib import Path

from edgeship.edge_pusher.fleet.broker import Tls, add_device, broker_config
from tests.helpers.tools import debian_program


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need_mosquitto() -> str:
    """Mosquitto's path; missing, the test skips with the reason (fails on CI)."""
    return debian_program("mosquitto")


class Broker:
    """One Mosquitto with edgeship's configuration in ``folder``."""

    def __init__(self, folder: Path, tls: Tls | None = None):
        self.mosquitto = need_mosquitto()
        self.folder = folder
        self.port = free_port()
        self.tls = tls
        broker_config(folder, f"127.0.0.1:{self.port}", tls, user=getpass.getuser())
        self.url = f"{'mqtts' if tls else 'mqtt'}://{'localhost' if tls else '127.0.0.1'}:" \
                   f"{self.port}"
        self.process: subprocess.Popen | None = None
        self.log = folder / "mosquitto.log"

    def add_device(self, device_id: str, hardware: str = "cpu", channel: str = "stable") -> str:
        """The device's password file (the device registered as ``hardware`` on
        ``channel``); a running broker reads the password file again."""
        path = add_device(self.folder, device_id, hardware, channel)
        if self.process:
            self.process.send_signal(1)  # SIGHUP: reload passwords and ACL
            time.sleep(0.2)
        return str(path)

    def simulator(self):
        """A connected paho client of a test-only user the ACL lets write every device's
        topic: thousands of devices' reports without thousands of connections. Call before
        :meth:`start` (the ACL is read at start)."""
        import paho.mqtt.client as mqtt

        from edgeship.edge_pusher.fleet.broker import add_users

        password = add_users(self.folder, ["simulator"])["simulator"]
        with open(self.folder / "acl", "a") as acl:
            acl.write("\n# tests only: one user stands in for many devices\nuser simulator\n"
                      "topic write edgeship/devices/+/state\n")

        def connect():
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
            client.username_pw_set("simulator", password)
            client.connect("127.0.0.1", self.port)
            client.loop_start()
            return client

        return connect

    @property
    def reader_password(self) -> str:
        return (self.folder / "fleet.password").read_text().strip()

    def start(self) -> Broker:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [self.mosquitto, "-c", str(self.folder / "mosquitto.conf")], stdout=log,
                stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log.read_text()[-2000:]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start listening")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # saves the retained messages (persistence)
            self.process.wait(timeout=10)
        self.process = None
