//! SDP model, offer building and answer negotiation for audio + telephone-event. Pure.
