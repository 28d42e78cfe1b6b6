"""The fault actions a scenario, the demo's control endpoint and `kafka-jmx fault` accept: one list for the
embedded cluster, the real-Kafka engine and the command line (which must not load the simulator)."""

FAULTS = ("kill", "restart", "isolate", "heal", "slow", "corrupt_metadata", "fail_log_dir", "flood", "pause", "resume",
          "elect_leaders", "bounce", "stop_consumer", "slow_consumer", "resume_consumer")
# what a workload consumer group goes through (the target is the group's name)
CONSUMER_ACTIONS = ("stop_consumer", "slow_consumer", "resume_consumer")
