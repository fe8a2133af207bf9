"""The approval pages: a second person sees a held item and decides, in the browser.

Server-rendered (Starlette + Jinja2), little JavaScript, every rule enforced on
the server. The domain rules live in `gatekeeper.held`; these modules turn
requests into calls to it and its answers into pages.
"""
