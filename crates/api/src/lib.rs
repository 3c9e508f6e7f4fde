//! Calling API: request models, validation of all 42 commands into control::CallCommand, SignalWire error bodies, the axum router.
