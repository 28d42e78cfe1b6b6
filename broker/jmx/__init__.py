"""Real JMX for the embedded cluster: a JVM driven through py4j publishes every node's MBeans
over JMX/RMI (and Jolokia), and reads any JVM's MBeans in bulk."""
