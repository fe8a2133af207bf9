"""Letters: the print-queue hook (CUPS backend and the letters service), address-block reading,
page stamping, and the postal room's scan before dispatch.

The CUPS backend (`gatekeeper.post.backend`) imports nothing beyond the standard library,
so it starts in milliseconds; everything else runs in the long-lived letters service.
"""
