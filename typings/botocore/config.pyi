from typing import Any, Literal, TypedDict

class RetryConfig(TypedDict, total=False):
    max_attempts: int
    total_max_attempts: int
    mode: Literal["legacy", "standard", "adaptive"]

class Config:
    def __init__(self, *, retries: RetryConfig | None = None, **options: Any) -> None: ...
