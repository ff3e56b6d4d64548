"""L3: model serving over the KServe v2 protocol."""
