"""The descriptor pool of these stubs (see scripts/grpc-stubs): their own, not protobuf's default
one, where other packages (tritonclient.grpc, kserve) register the same messages by name."""

from google.protobuf import descriptor_pool

POOL = descriptor_pool.DescriptorPool()
