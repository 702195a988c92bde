//! DNS-SD (`_osc._udp`): advertising a master or receiver, browsing for them.
