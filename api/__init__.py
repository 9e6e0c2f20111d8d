"""voxline's HTTP control plane (FastAPI) and the ``voxline`` command line."""
