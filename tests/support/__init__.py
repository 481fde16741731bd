"""Shared test helpers, the one place a test module imports helpers from (never from another test module or the
conftest): data paths and committed clips (``datasets``), free ports (``net``), fakes for the fast tier (``fakes``:
energy VAD, a recognizer whose text is the tone's frequency), servers (``liveserver`` with the real models,
``fakeserver`` and ``platforms`` with the fake engine, ``pgserver``, ``redisserver``), clients (``clients``:
WebSocket calls with credentials; ``browser``: headless Chromium), and ``calls`` (a call driven in-process)."""
