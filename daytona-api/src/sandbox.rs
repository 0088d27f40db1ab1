//! Control-plane DTOs.
