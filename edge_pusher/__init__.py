"""edgeship.edge_pusher: the publisher, the side of OTA delivery that signs and ships models.

The push step, the signed TUF repository in a bucket (``repository``), its keys (``keys``), the
bucket backends (``buckets``), the publish lock (``lock``), the publisher's commands (``cli``:
keys, publish, repo) and, in ``fleet``, the fleet side: the broker's configuration, reading the
devices' reports, fleet status and its HTML report, and the rollout policy (``edgeship rollout``,
``edgeship fleet``). The device agent is ``edgeship.device``; the two share only the root layer
(``edgeship.contract``, ``edgeship.litert``, ``edgeship.quantization_report``). Only
``component`` imports kfp, and boto3 is imported only for an ``s3://`` bucket.

The push step is public here as the other steps are in theirs, each name imported only when
first used (importing this package imports neither kfp nor LiteRT)::

    PushParams      push's parameters: names, types, defaults and checks, declared once
    run_push        the executor (``edgeship.edge_pusher.push.push``; the name ``push`` here is
                    the module)
    push_component  the KFP component (``edgeship.edge_pusher.component.push``;
                    ``component.yaml`` is its compiled form)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgeship.lazy import lazy_exports

if TYPE_CHECKING:
    # kfp ships neither stubs nor py.typed; the type checker reads its classes from its source.
    from kfp.dsl.base_component import (  # pyright: ignore[reportMissingTypeStubs]
        BaseComponent,
    )

    from edgeship.edge_pusher.push import PushParams
    from edgeship.edge_pusher.push import push as run_push

    #: ``edgeship.edge_pusher.component.push``, whose decorator kfp leaves untyped.
    push_component: BaseComponent

__all__ = ["PushParams", "push_component", "run_push"]

__getattr__, __dir__ = lazy_exports(
    __name__, {"PushParams": "push", "run_push": "push:push", "push_component": "component:push"}
)
