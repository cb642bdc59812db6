"""Where each proxied conversation ends, remembered from one request of a tool to its next.

A tool (an editor, a script) sends its whole chat again with every request; the proxy stores
only its newest message, after the end of the conversation's open branch. Finding that end
reads every message of the conversation (7 ms for a thousand on a big history), on the way to
the first token. The end a relayed turn left is remembered with the database's transaction
count (`Database.transactions`): while no writing transaction has ended since, nothing can have
moved it, and the next request takes it from here. Any other write (a page's send, a branch
switch, a delete, an import, a restore) changes the count, and the end is read again.
"""

from __future__ import annotations

import threading

REMEMBERED = 256  # conversations; a tool has a handful open at a time


class RelayTails:
    def __init__(self) -> None:
        self._ends: dict[str, tuple[int, int]] = {}  # conversation -> (last message, count)
        self._lock = threading.Lock()

    def end(self, conversation_id: str, transactions: int) -> int | None:
        """The open branch's last message, if it was remembered at `transactions`."""
        with self._lock:
            known = self._ends.get(conversation_id)
        if known is None or known[1] != transactions:
            return None
        return known[0]

    def remember(self, conversation_id: str, last_message: int, transactions: int) -> None:
        """`last_message` ends the open branch once `transactions` writes have ended (the
        number the write that made it so will have: Database.transaction_number)."""
        with self._lock:
            self._ends.pop(conversation_id, None)  # newest last: the oldest goes first
            self._ends[conversation_id] = (last_message, transactions)
            while len(self._ends) > REMEMBERED:
                del self._ends[next(iter(self._ends))]
