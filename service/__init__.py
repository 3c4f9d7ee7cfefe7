"""latentserve's REST service: encoders and decoders of exported autoencoders over HTTP."""
