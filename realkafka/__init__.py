"""Real Apache Kafka 4.x for the tests and the `kafka` cluster engine: the jars come from Maven
Central through realkafka/pom.xml (scripts/install-realkafka), the processes are ours to start,
kill, pause and stop."""
