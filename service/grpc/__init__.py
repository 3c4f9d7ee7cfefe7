"""The Open Inference Protocol over gRPC: a front end beside service/v2 (HTTP), sharing its data
plane (service/models/dataplane.py and its protocol view, service/models/oip.py). The .proto
files are in proto/, their stubs in generated/.

May import: service.core, service.models, grpc. Never service.asgi, service.rest, service.v2 or
service.runtime: errors reach it as service.core.errors kinds, mapped to gRPC codes here.
"""
