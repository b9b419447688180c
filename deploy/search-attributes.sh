#!/usr/bin/env bash
# Register Chimera's search attributes on an existing Temporal cluster (the dev server and
# `chimera dev` do this at boot). Usage: deploy/search-attributes.sh [namespace]
set -euo pipefail
ns="${1:-default}"
for attr in TenantId AgentId CampaignId TaskType Platform ReviewState CampaignState; do
  temporal operator search-attribute create --namespace "$ns" --name "$attr" --type Keyword || true
done
temporal operator search-attribute create --namespace "$ns" --name Confidence --type Double || true
temporal operator search-attribute create --namespace "$ns" --name CampaignCycle --type Int || true
