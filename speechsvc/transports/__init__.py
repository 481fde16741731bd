"""Every way a call or a job reaches the service: WebSocket, gRPC, the telephony platforms' adapters, the REST job
and OpenAI-compatible APIs, subscriptions and webhooks; all of them through one call lifecycle (``lifecycle``)."""
