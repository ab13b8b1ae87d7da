"""Transports: stream (TCP, Unix), datagram, and the servers' accept loop."""
