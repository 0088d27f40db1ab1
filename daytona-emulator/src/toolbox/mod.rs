//! Toolbox routes. (Skeleton: the toolbox helper fills it in.)

/// The sessions and processes alive in one sandbox.
#[derive(Debug, Default)]
pub struct SandboxRuntime {}
