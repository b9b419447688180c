"""People: users and their keys, signed requests, their verification and authorization (specs/access.md)."""
