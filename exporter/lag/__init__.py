"""Consumer groups and their lag, read through the Kafka protocol (the `kafka:` section of the
exporter's configuration): what broker JMX cannot give, since committed offsets live on the group
coordinators and log end offsets on the partition leaders."""
