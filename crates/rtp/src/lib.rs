//! RTP packets, packetizer with sequence/timestamp/marker/SSRC, RFC 4733 telephone-events, receive accounting. Pure.
