"""Generated gRPC stubs of the v1 API (``make proto``; part of ``make install``)."""

try:
    from speechsvc.v1 import speechsvc_pb2 as pb
    from speechsvc.v1 import speechsvc_pb2_grpc as pb_grpc
except ImportError as e:  # pragma: no cover - only on a checkout that skipped the install step
    raise ImportError("gRPC stubs are not generated; run `make proto` (or `make install`)") from e

__all__ = ["pb", "pb_grpc"]
