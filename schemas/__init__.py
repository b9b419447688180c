"""Chimera's contracts: pure pydantic models and pure policy, shared by every room.

Nothing here does I/O; workflows import these modules through the sandbox.
"""
