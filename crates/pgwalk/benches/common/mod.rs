//! What the bench binaries share: `benches/common/` is not a bench target
//! of its own (Cargo only takes files directly under `benches/`).

/// The median of `v`: the middle value, or the mean of the two middle
/// ones for an even count. A run's outliers (a preempted repetition) move
/// it least.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
