"""The webhook ingress: X (Account Activity API) and Meta (Instagram) deliveries become `mention` signals.

signatures (HMAC checks), payloads (parsing both kinds), credentials (the secrets), routing (account ->
campaign), deliveries (de-duplication), signalling (signal-with-start), intake (one delivery, event by event),
app (the Starlette endpoints), server (uvicorn), sandbox (the platform side, for the sandbox). See
specs/ingress.md.
"""
