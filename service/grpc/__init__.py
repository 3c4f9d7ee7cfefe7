"""The Open Inference Protocol over gRPC: a front end beside service/v2 (HTTP), sharing its data
plane (service/models/oip.py). The .proto files are in proto/, their stubs in generated/."""
