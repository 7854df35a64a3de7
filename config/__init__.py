"""The NATS configuration format, typed options and validation. Pure: no actors, no sockets."""
