"""The fleet side: the broker's credentials and configuration, reading the devices' reports,
the fleet's status and HTML report, and the rollout policy that acts on them.

Nothing here is on the delivery path: devices take models from the signed repository alone,
and everything the fleet side decides reaches them as a signed change to the channel index
(``Repository.change_rollout``). See docs/fleet.md.
"""
