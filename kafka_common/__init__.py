"""What the simulator, the exporter and the tools above them share, depending on none of them:
durations and sizes, ObjectName parsing, located YAML loading, and the helper JVM."""
