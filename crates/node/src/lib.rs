//! The runtime: call actors, media shards, SIP and RTP I/O, SWML fetch, the CallControl implementation.
