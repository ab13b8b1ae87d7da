# datagram.pyx holds only Python-visible code (DatagramTransport); nothing
# is cimported from it.
