//! The statistics every benchmark reports: median, 99th percentile and maximum of a sample
//! ([`Summary`]), and a least-squares line ([`fit_line`]) for drift.
//!
//! Percentiles use the nearest-rank method (the value at rank ⌈p·n⌉ of the sorted sample), so
//! every reported figure is one that was measured, never an interpolation between two.

use std::fmt;

/// Median, p99 and extremes of a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Values in the sample.
    pub n: usize,
    /// 50th percentile (nearest rank).
    pub p50: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Largest value.
    pub max: f64,
    /// Smallest value.
    pub min: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl Summary {
    /// The summary of `values`, or `None` for an empty sample (or one with a NaN).
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() || values.iter().any(|v| v.is_nan()) {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Self {
            n: sorted.len(),
            p50: percentile_sorted(&sorted, 50.0),
            p99: percentile_sorted(&sorted, 99.0),
            max: sorted[sorted.len() - 1],
            min: sorted[0],
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
        })
    }

    /// The summary of the absolute values of `values`.
    pub fn of_abs(values: &[f64]) -> Option<Self> {
        Self::of(&values.iter().map(|v| v.abs()).collect::<Vec<_>>())
    }

    /// Every figure multiplied by `k` (a change of unit).
    pub fn scaled(self, k: f64) -> Self {
        Self {
            n: self.n,
            p50: self.p50 * k,
            p99: self.p99 * k,
            max: self.max * k,
            min: self.min * k,
            mean: self.mean * k,
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n {} p50 {} p99 {} max {}", self.n, num(self.p50), num(self.p99), num(self.max))
    }
}

/// The `p`-th percentile (0 < `p` ≤ 100) of an ascending sample by nearest rank: the value at
/// rank ⌈p/100 · n⌉ (1-based). Panics on an empty sample.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    assert!(!sorted.is_empty(), "percentile of an empty sample");
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A least-squares line `y = intercept + slope · x`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Line {
    /// dy/dx.
    pub slope: f64,
    /// y at x = 0.
    pub intercept: f64,
    /// Standard error of the slope (0 for two points or a perfect fit).
    pub slope_stderr: f64,
}

/// The least-squares line through `(x, y)` points, or `None` for fewer than two distinct x.
pub fn fit_line(points: &[(f64, f64)]) -> Option<Line> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let residuals: f64 = points.iter().map(|p| (p.1 - intercept - slope * p.0).powi(2)).sum();
    let slope_stderr = if points.len() > 2 { (residuals / (n - 2.0) / sxx).sqrt() } else { 0.0 };
    Some(Line { slope, intercept, slope_stderr })
}

/// A number with three significant digits (or fewer decimals for large ones): `0.0123`,
/// `1.23`, `123`, `12345`.
pub fn num(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".to_owned()
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a >= 0.01 {
        format!("{v:.3}")
    } else {
        format!("{v:.2e}")
    }
}

/// `a / b` as a ratio for the report (`12.3×`), or `—` when it means nothing.
/// A table cell `p50 / p99 / max`, or `—` without values.
pub fn cell(s: Option<Summary>) -> String {
    s.map_or("—".to_owned(), |s| format!("{} / {} / {}", num(s.p50), num(s.p99), num(s.max)))
}

pub fn ratio(a: f64, b: f64) -> String {
    if b == 0.0 || !a.is_finite() || !b.is_finite() { "—".to_owned() } else { format!("{}×", num(a / b)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_of_known_data() {
        let data: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Summary::of(&data).expect("non-empty");
        assert_eq!((s.n, s.p50, s.p99, s.max, s.min), (100, 50.0, 99.0, 100.0, 1.0));
        assert_eq!(s.mean, 50.5);
        // Order does not matter; 1000 values: p99 is the 990th.
        let mut data: Vec<f64> = (1..=1000).rev().map(f64::from).collect();
        data.swap(3, 700);
        let s = Summary::of(&data).expect("non-empty");
        assert_eq!((s.p50, s.p99, s.max), (500.0, 990.0, 1000.0));
        // Small samples: p99 of fewer than 100 values is the maximum.
        let s = Summary::of(&[3.0, 1.0, 2.0]).expect("non-empty");
        assert_eq!((s.p50, s.p99, s.max), (2.0, 3.0, 3.0));
        assert_eq!(Summary::of(&[7.0]).map(|s| (s.p50, s.p99)), Some((7.0, 7.0)));
        assert_eq!(Summary::of(&[]), None);
        assert_eq!(Summary::of(&[1.0, f64::NAN]), None);
        let s = Summary::of_abs(&[-4.0, 1.0, -2.0, 3.0]).expect("non-empty");
        assert_eq!((s.p50, s.max), (2.0, 4.0));
        assert_eq!(s.scaled(1000.0).p50, 2000.0);
    }

    #[test]
    fn fits_a_known_line() {
        let points: Vec<(f64, f64)> = (0..50).map(|i| (f64::from(i), 2.5 * f64::from(i) - 7.0)).collect();
        let line = fit_line(&points).expect("enough points");
        assert!((line.slope - 2.5).abs() < 1e-12 && (line.intercept + 7.0).abs() < 1e-9);
        assert!(line.slope_stderr < 1e-9);
        // Symmetric noise does not move the slope.
        let noisy: Vec<(f64, f64)> =
            (0..100).map(|i| (f64::from(i), f64::from(i) + if i % 2 == 0 { 0.5 } else { -0.5 })).collect();
        let line = fit_line(&noisy).expect("enough points");
        assert!((line.slope - 1.0).abs() < 1e-3, "{line:?}");
        assert!(line.slope_stderr > 0.0);
        assert_eq!(fit_line(&[(1.0, 1.0)]), None);
        assert_eq!(fit_line(&[(1.0, 1.0), (1.0, 2.0)]), None);
    }

    #[test]
    fn formats_numbers_and_ratios() {
        assert_eq!(num(0.0), "0");
        assert_eq!(num(0.01234), "0.012");
        assert_eq!(num(1.234), "1.23");
        assert_eq!(num(12.34), "12.3");
        assert_eq!(num(1234.4), "1234");
        assert_eq!(num(-0.5), "-0.500");
        assert_eq!(num(0.000123), "1.23e-4");
        assert_eq!(ratio(10.0, 4.0), "2.50×");
        assert_eq!(ratio(1.0, 0.0), "—");
    }
}
