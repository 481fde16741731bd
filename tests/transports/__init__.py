"""Tests of speechsvc/transports: WebSocket, gRPC, the OpenAI-compatible API, OpenAPI, and the call-platform
adapters."""
