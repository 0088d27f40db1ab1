//! daytona-emulator
