"""Generated protobuf and gRPC code (``make proto``); never edit the *_pb2 files by hand.

- ``api_pb2`` / ``api_pb2_grpc``: Katib's wire API, package ``api.v1.beta1``.
- ``store_pb2`` / ``store_pb2_grpc``: Sextant's resource store, package ``sextant.v1``.
"""
