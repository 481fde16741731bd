"""Tests of speechsvc/security: authentication, tenants, limits, webhooks, TLS, the audit log, one lock for
every door."""
