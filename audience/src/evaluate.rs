//! The reference evaluator (next commit).
