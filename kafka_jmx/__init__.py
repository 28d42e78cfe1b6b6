"""The toolkit above the simulator and the exporter: the kafka-jmx command line, the demo, the alert
rehearsal and the embedded cluster as an exporter target."""
