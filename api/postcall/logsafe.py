"""The post-call workers' log escaping lives with the rest of the process's: see
``voice_core.logsafe``."""

from voice_core.logsafe import safe_id, safe_text

__all__ = ["safe_id", "safe_text"]
