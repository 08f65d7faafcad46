"""Shared pytest set-up: quiet TensorFlow logs and keep every run on the CPU, deterministically."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

# Fixtures the publisher and device tests share: tiny real models, keys, repositories, servers.
pytest_plugins = ["tests.helpers.fixtures"]
