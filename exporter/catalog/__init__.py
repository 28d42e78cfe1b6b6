"""The metric catalog (exporter/catalog/kafka-4x.yaml) and the artifacts generated from it."""
