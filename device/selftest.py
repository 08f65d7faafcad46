"""The device's self-test: run a verified download once before activating it.

Signatures prove the bytes are the ones the pipeline published; the self-test proves this device
*computes* what the publisher computed with them: the right runtime, the right delegate, no
quantization mismatch, a model that loads at all. The self-test travels in the target's signed
custom metadata (``edgeship.contract.SelfTest``); the arithmetic is ``edgeship.litert``'s.
"""

from __future__ import annotations

from edgeship import litert
from edgeship.contract import SelfTest
from edgeship.errors import OtaError, SelfTestMismatch


def check(model_path: str, self_test: object, hardware: str = "cpu") -> None:
    """Raise :class:`~edgeship.errors.ModelLoadError` or
    :class:`~edgeship.errors.SelfTestMismatch` unless the model passes its signed self-test."""
    try:
        test = SelfTest.from_dict(self_test)
    except OtaError as err:
        raise SelfTestMismatch(f"signed self-test is malformed: {err}") from None
    interpreter = litert.load(model_path, delegate=litert.delegate_for(hardware))
    why = test.differs(litert.run(interpreter, test.input))
    if why:
        raise SelfTestMismatch(f"signed self-test failed: {why}")
