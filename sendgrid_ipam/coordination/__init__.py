"""What calls share, behind one interface: the rate-limit gate, the retry budget and write leases.

`Coordinator` (``base.py``) is the interface; `MemoryCoordinator` (``memory.py``) the in-process
default. A coordinator shared by several processes (Redis) is a second implementation of the
same interface: the engine never knows which one it has.
"""

from .base import Coordinator, Lease, LeaseBusy, LeaseLostError
from .memory import MemoryCoordinator

__all__ = ["Coordinator", "Lease", "LeaseBusy", "LeaseLostError", "MemoryCoordinator"]
