"""MBeans with Kafka 4.x's ObjectNames and attribute sets, computed from live state."""
