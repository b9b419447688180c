"""The offline checks of a payment's stated purpose, before any model reads it: the purpose is untrusted text (an
agent writes it, and an agent reads mentions), so the Judge's own detectors look at it as at any untrusted
input: the safety rules' input patterns, and the multilingual harm classifier's injection class.

A rule's finding rejects the payment, a classifier's escalates it (schemas.payment.cfo_decide). Whether the
purpose serves a goal is schemas.payment.goal_served.
"""

from __future__ import annotations

from chimera.safety.classifier import HarmClassifier
from chimera.safety.rules import SafetyRules


def purpose_flags(purpose: str, rules: SafetyRules | None) -> list[str]:
    """What the safety rules' input patterns find in the purpose (injection, threats, abuse): each rejects."""
    if rules is None:
        return []
    return [f"{rule_id} (safety rule)" for rule_id in dict.fromkeys(r for _, _, r in rules.input_markers(purpose))]


# The classifier's categories that mean something in a payment purpose. Its `scam` class learned that talk of
# fees and sending money marks a scam mention, and every honest purpose talks of both; `abuse` and `dangerous`
# describe posts, not payments. An injection is the threat an agent-written purpose carries.
PURPOSE_CATEGORIES = frozenset({"injection"})


def purpose_concerns(purpose: str, classifier: HarmClassifier | None) -> list[str]:
    """What the harm classifier flags in the purpose (its injection class): each escalates to a person rather
    than rejecting, as the classifier was trained on mentions and tool results, not on payment purposes."""
    if classifier is None:
        return []
    flagged = classifier.score_one(purpose).flagged()
    return [
        f"{category} ({score:.2f}, harm classifier)" for category, score in flagged if category in PURPOSE_CATEGORIES
    ]
