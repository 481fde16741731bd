"""The supervisor console: a browser UI for live calls and recorded-call review, served by the app itself.

Static files only (``static/``, shipped as package data): plain ES modules, no build step and nothing fetched from
another origin. Everything the console shows comes from the public API (``/v1/calls``, the event subscriptions,
``/v1/jobs``), with the caller's own credentials, so it can see no more than any other client of that API.
"""
