"""Processes and what happens to the calls of one that dies.

Every server process has an id (``CallRegistry.process_id``), a row in ``processes``
and a heartbeat on it; a call's record names the process carrying its media
(``owner``). A process that stops beating is dead, and any live process finalizes
its calls in progress with what they had so far (``orphans``):

- ``models``: the ``processes`` table;
- ``liveness``: when a process counts as dead (pure: rows and a clock in, reasons out);
- ``orphans``: finalizing a dead process's calls, exactly once, through the normal
  post-call path;
- ``monitor``: ``ProcessMonitor``, this process's row, its beat and the sweep.
"""
