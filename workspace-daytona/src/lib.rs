//! workspace-daytona
