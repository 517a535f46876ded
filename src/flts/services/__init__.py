"""The Kafka services of the spec (preprocess, train, eval, inference): thin bindings of stage
functions to the generic worker, configured by the spec's env vars."""
