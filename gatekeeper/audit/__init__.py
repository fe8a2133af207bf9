"""The tamper-evident audit trail: events chained by hash (`chain`), and checking it (`verify`)."""

from gatekeeper.audit.chain import ChainHead, read_head, record_audit

__all__ = ["ChainHead", "read_head", "record_audit"]
