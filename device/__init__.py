"""edgeship.device: the agent a device runs to take models from a signed repository.

What a firmware image carries (``pip install edgeship``): python-tuf, numpy and LiteRT, never
TensorFlow, kfp, Beam or boto3. The agent polls with deadlines, verifies every file against
signed TUF metadata, self-tests a download with LiteRT, and only then switches its A/B slots;
on any failure it keeps the model it has.

    from edgeship.device import Agent
    agent = Agent("/var/lib/edgeship", "https://ota.example.com/fleet",
                  trusted_root="/etc/edgeship/root.json", device_id="cam-0042")
    agent.poll_once()
    agent.active_model_path()

Public here: :class:`Agent`, :class:`PollResult`, :func:`device_status` (status of a state
folder, no network), :class:`TransferLimits` (the download deadlines) and the fetchers
(:class:`FileFetcher`, :class:`CountingFetcher`).
"""

from edgeship.device.agent import Agent, PollResult
from edgeship.device.fetcher import CountingFetcher, FileFetcher, TransferLimits
from edgeship.device.state import device_status

__all__ = ["Agent", "CountingFetcher", "FileFetcher", "PollResult", "TransferLimits",
           "device_status"]
