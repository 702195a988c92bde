//! Network interfaces by name or address, multicast sending and receiving sockets.
