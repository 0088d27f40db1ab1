//! The conformance suite (placeholder, filled in below).
