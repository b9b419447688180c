"""Campaign-manager operations on Temporal, by concern; nothing here prints.

    campaigns    start a campaign from its file, list campaigns, their status, and the control signals
    reviews      the human review queue: list, show, decide
    listing      listings from visibility: pages, page tokens, counts, and the optional per-row `--check`
    signals      signal-then-confirm: send a signal with a request id, poll the `ack` query until it answers
    connection   connecting, describing, listing and querying workflows, with timeouts
    errors       what can go wrong, in words for a campaign manager

The CLI (chimera/cli) and the demo call these and present the results.
"""
