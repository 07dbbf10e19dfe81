//! The C ABI of pgwalk (work in progress).
