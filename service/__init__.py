"""latentserve's service: encoders and decoders of exported autoencoders over HTTP.

One data plane (service.models) that knows no HTTP, thin front ends that translate their wire
format to it (service.rest: the domain API; service.v2: the Open Inference Protocol), what both
HTTP front ends share (service.asgi), the process around them (service.runtime), and the common
ground below all (service.core). service.app assembles the app; docs/architecture.md maps every
module.
"""
