//! Toolbox DTOs.
