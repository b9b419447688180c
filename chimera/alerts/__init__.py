"""Alerts to configured notifiers (specs/alerts.md): signed webhooks (Slack-compatible) and SMTP email.

Modules, one concern each: config (notifier settings), webhook, smtp, dispatch (AlertDispatcher, notifiers_from),
anomaly (pure rules), errors. This package file imports nothing, so importing one module stays cheap.
"""
