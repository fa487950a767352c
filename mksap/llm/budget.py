"""The run's spending cap (`max_cost`, `mksap run --max-cost USD`).

Each request's estimated cost is reserved before it is sent and settled with the real usage
after, so calls in flight count against the cap too: a request is sent only when what was
spent, what calls in flight have reserved and its own estimate stay within the cap. The first
request refused stops the run's spending: every later request is refused as well (answers
already cached are still served), so a run ends at a well-defined point and the next run goes
on from the LLM cache without paying twice.

All calls happen on the runtime's one event loop; the lock only guards readers in other threads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from mksap.contracts.errors import CostCapError


@dataclass
class Budget:
    """Spent and reserved USD against `cap`."""

    cap: float
    spent: float = 0.0
    reserved: float = 0.0
    sent: int = 0
    refused: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def stopped(self) -> bool:
        """True once a request was refused: the run spends nothing more."""
        return self.refused > 0

    def reserve(self, estimate: float, what: str) -> float:
        """Reserve `estimate` USD for one request, or raise `CostCapError` (and stop)."""
        with self._lock:
            if not self.stopped and self.spent + self.reserved + estimate <= self.cap:
                self.reserved += estimate
                self.sent += 1
                return estimate
            self.refused += 1
            spent, reserved = self.spent, self.reserved
        raise CostCapError(
            f"cost cap: {what} (~${estimate:.4f}) not sent: it could take this run past --max-cost "
            f"${self.cap:.2f} (${spent:.4f} spent, ${reserved:.4f} reserved by calls in flight)"
        )

    def settle(self, reservation: float, cost: float) -> None:
        """A reserved request ended: its real `cost` replaces the reservation."""
        with self._lock:
            self.reserved = max(0.0, self.reserved - reservation)
            self.spent += cost

    def line(self) -> str:
        """The one line a run that stopped at the cap ends with."""
        return (
            f"stopped at the cost cap: ${self.spent:.4f} spent of --max-cost ${self.cap:.2f} on {self.sent} "
            f"request(s); {self.refused} request(s) not sent. Every answer received is cached: run again "
            "(with a higher --max-cost) to continue without paying twice"
        )
