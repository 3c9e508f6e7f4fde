//! Signed webhook delivery from the durable outbox: HMAC-SHA1/SHA256 signatures, per-call ordering, retries.
