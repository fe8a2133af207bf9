"""The near-miss log and breach register that governance keeps and reports from.

`sync` fills it from facts the store already holds (blocked items, checkers'
returns and corrections, missed canaries); people add incidents and events and
amend any entry, every version kept (`incidents`); `reports` counts it per
financial year; `subject_access` finds what concerns one person; `retention`
purges held content while the register keeps its metadata.
"""

from gatekeeper.register.filling import SyncReport, sync, sync_store

__all__ = ["SyncReport", "sync", "sync_store"]
