"""voxline's Python SDK (``voxline.client``) and MCP server (``voxline.mcp_server``).

```python
from voxline import Client, AsyncClient, verify_signature
```
"""

from voxline.client import AsyncClient, Client
from voxline.errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ValidationError,
    VoxlineError,
)
from voxline.signing import verify_signature

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ConflictError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "ValidationError",
    "VoxlineError",
    "verify_signature",
]
