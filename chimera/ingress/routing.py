"""Which campaign answers a mention pushed to an account.

1. The receiving account becomes a handle: `ingress_accounts["<platform>:<account id>"]` (live accounts: X's
   `for_user_id` and Meta's entry id are numeric ids, mapped in settings), else the account id itself (the
   sandbox delivers the handle as the account id, so it needs no configuration).
2. The candidates are the campaigns whose persona has that handle on that platform, which run on that
   platform and are `running` or `paused` in the store, oldest first.
3. The mention goes to the first candidate whose workflow takes the signal (signal-with-start, see
   signalling.py). Several campaigns on one account would only race for the same reply, so exactly one gets
   it; a candidate whose workflow has closed (the store does not record completion) is passed over.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from chimera.db import CampaignRecord, StateStore

ROUTABLE_STATES = frozenset({"running", "paused"})  # a paused campaign holds pushed mentions until resume


def handle_for(platform: str, account_id: str, accounts: Mapping[str, str]) -> str:
    return accounts.get(f"{platform}:{account_id}", account_id)


def candidates(
    store: StateStore, platform: str, account_id: str, accounts: Mapping[str, str]
) -> Iterator[CampaignRecord]:
    """The campaigns that may answer, in the order they are tried. Lazy (blocking store calls, one per campaign
    looked at): the first that takes the signal ends the search, however many campaigns share the handle."""
    for route in store.mention_routes(platform, handle_for(platform, account_id, accounts)):
        record = store.get_campaign(route.tenant_id, route.campaign_id)
        if record is not None and record.status in ROUTABLE_STATES and platform in record.spec.platforms:
            yield record
