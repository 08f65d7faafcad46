"""Helpers shared by the tests: data builders, OTA fixtures and helpers, command-line runners."""

from pathlib import Path

#: The repository's root folder (the project's source tree).
REPO = Path(__file__).resolve().parents[2]

#: What a device never has: the pipelines extra's ML stack, kfp and boto3 (import-linter's
#: device contract in pyproject.toml forbids the same; a test keeps the two lists equal).
ML_STACK = ("tensorflow", "keras", "tf_keras", "kfp", "apache_beam",
            "tensorflow_data_validation", "tensorflow_model_analysis", "tfx", "tfx_bsl",
            "boto3", "botocore")
