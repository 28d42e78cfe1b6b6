"""The commands of kafka-jmx: each module adds its parser (add) and runs it (run)."""
