"""gRPC server reflection under both names clients ask for: ``grpc.reflection.v1alpha.ServerReflection`` (what
grpcio-reflection ships) and ``grpc.reflection.v1.ServerReflection`` (what current grpcurl, grpcui, Postman and
Kreya try first).

The two services are the same protocol under two package names: identical messages, field for field (gRPC's
``reflection/v1/reflection.proto`` was copied from v1alpha and only renamed). grpcio-reflection has no v1 stubs,
so the v1 service is served by the same servicer with the v1alpha message classes as (de)serialisers, and the v1
file descriptor, the v1alpha one renamed, is added to the descriptor pool so that reflection can describe
itself under both names.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2

V1_PACKAGE = "grpc.reflection.v1"
V1_FILE = "grpc/reflection/v1/reflection.proto"
V1_SERVICE = f"{V1_PACKAGE}.ServerReflection"


def _add_v1_descriptor(pool: descriptor_pool.DescriptorPool) -> None:
    """The v1 file descriptor: v1alpha's, renamed; added once."""
    try:
        pool.FindFileByName(V1_FILE)
        return
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    old = proto.package
    proto.name, proto.package = V1_FILE, V1_PACKAGE
    for message in proto.message_type:
        for field in message.field:
            if field.type_name.startswith(f".{old}."):
                field.type_name = f".{V1_PACKAGE}." + field.type_name[len(old) + 2 :]
    for service in proto.service:
        for method in service.method:
            method.input_type = f".{V1_PACKAGE}." + method.input_type.rsplit(".", 1)[1]
            method.output_type = f".{V1_PACKAGE}." + method.output_type.rsplit(".", 1)[1]
    pool.Add(proto)


def enable_reflection(service_names: Iterable[str], server: Any) -> None:
    """Serve reflection (v1 and v1alpha) on an aio server for ``service_names`` (both reflection names are added)."""
    _add_v1_descriptor(descriptor_pool.Default())
    names = (*service_names, reflection.SERVICE_NAME, V1_SERVICE)
    servicer = reflection.aio.ReflectionServicer(names)
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    for service in (reflection.SERVICE_NAME, V1_SERVICE):
        generic = grpc.method_handlers_generic_handler(service, {"ServerReflectionInfo": handler})
        server.add_generic_rpc_handlers((generic,))
