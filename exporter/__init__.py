"""The exporter: reads Kafka's MBeans and feeds Prometheus and Zabbix."""
