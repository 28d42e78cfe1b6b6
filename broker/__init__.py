"""An embedded Kafka 4.x (KRaft) cluster with Kafka's semantics and Kafka's MBeans."""
