//! Calls, call events and the webhook outbox in SQLite, with migrations.
