//! Host-test harness.
