//! A sandbox's directory on the host. (Skeleton: the toolbox helper fills it in.)

/// Directories of one sandbox and the mapping between sandbox paths and host paths.
#[derive(Debug)]
pub struct SandboxLayout {}
