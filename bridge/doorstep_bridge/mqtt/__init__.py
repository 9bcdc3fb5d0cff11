"""MQTT: the broker connection, the topic names and the publishers/subscribers."""
