//! Harness for tests against a real server; see tests/.
