"""The whole schema: every feature's tables on one metadata (Alembic and its tests read it).

Each feature keeps its tables in its own ``models.py``; importing this module
registers them all on ``Base.metadata``.
"""

from __future__ import annotations

from api.agents import models as agents  # noqa: F401
from api.calls import models as calls  # noqa: F401
from api.campaigns import models as campaigns  # noqa: F401
from api.db.models import Base
from api.idempotency import models as idempotency  # noqa: F401
from api.postcall import models as postcall  # noqa: F401
from api.processes import models as processes  # noqa: F401
from api.realtime import models as realtime  # noqa: F401

metadata = Base.metadata
