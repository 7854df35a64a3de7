"""Sans-IO NATS protocol: bytes in, events out; events in, bytes out. No sockets, actors or clocks."""
