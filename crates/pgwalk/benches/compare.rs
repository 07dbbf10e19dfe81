//! Placeholder: the comparison benchmark lands with its issue.
fn main() {}
