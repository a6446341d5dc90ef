"""Stage 11: shipping: the OCI image, registries and their credentials, the lock that pins manifests."""
