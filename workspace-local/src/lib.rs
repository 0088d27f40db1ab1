//! workspace-local
pub struct LocalSandbox;
