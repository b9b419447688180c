"""Money: the CFO Judge's model reading of a payment's purpose (the policy itself is schemas/payment.py)."""
