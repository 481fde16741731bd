"""Streaming clients that pace a file at real time over the WebSocket (``ws``) and gRPC (``grpc_client``) APIs."""
