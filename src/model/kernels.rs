//! CPU kernels of the fused image encoder ([`super::fused`]): matrix products through the `gemm`
//! crate, layer norm, activations and softmax on row-major `f32` slices.
//!
//! Element-wise kernels are written as plain loops of arithmetic (a polynomial `exp`, a rational
//! `erf`) that the compiler vectorises; each is compiled three times (baseline, AVX2+FMA,
//! AVX-512) and the widest one the CPU supports is picked at run time. The only `unsafe` in the
//! module is that dispatch and the call into `gemm`, both checked by the caller-facing functions.

use gemm::Parallelism;

/// A row-major matrix view into a slice, with explicit row and column strides.
#[derive(Clone, Copy)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A contiguous `rows × cols` matrix.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols, 1)
    }

    /// A matrix whose element `(r, c)` is `data[r * row_stride + c * col_stride]`.
    ///
    /// # Panics
    /// If some element lies outside `data`.
    pub fn strided(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        assert!(
            rows == 0
                || cols == 0
                || (rows - 1) * row_stride + (cols - 1) * col_stride < data.len(),
            "matrix view {rows}×{cols} (strides {row_stride}, {col_stride}) exceeds {} values",
            data.len()
        );
        Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }

    /// The transpose (no copy).
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// `dst (+)= scale · lhs · rhs`, with `dst` a `lhs.rows × rhs.cols` block of a row-major buffer
/// whose rows are `dst_row_stride` apart. `accumulate` adds to what `dst` holds; otherwise it is
/// overwritten. `threads > 1` splits the product over the rayon pool.
///
/// # Panics
/// If the inner dimensions differ or the destination block does not fit in `dst`.
pub fn matmul(
    dst: &mut [f32],
    dst_row_stride: usize,
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    scale: f32,
    accumulate: bool,
    threads: usize,
) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(
        k, rhs.rows,
        "inner dimensions differ: {m}×{k} · {}×{n}",
        rhs.rows
    );
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        n <= dst_row_stride && (m - 1) * dst_row_stride + n <= dst.len(),
        "destination {m}×{n} (row stride {dst_row_stride}) exceeds {} values",
        dst.len()
    );
    if k == 0 {
        if !accumulate {
            for row in dst.chunks_mut(dst_row_stride).take(m) {
                row[..n].fill(0.0);
            }
        }
        return;
    }
    let parallelism = if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // SAFETY: `MatRef::strided` checked that every element of both operands lies inside its
    // slice, and the assert above that every destination element `r * dst_row_stride + c`
    // (r < m, c < n) lies inside `dst`, which is borrowed mutably, so it aliases neither operand.
    // `gemm` reads and writes exactly those elements.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_row_stride as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            scale,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// The widest instruction set the element-wise kernels and `gemm` use on this CPU.
pub fn cpu_kernel_name() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            return "avx512";
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            return "avx2+fma";
        }
    }
    "baseline"
}

/// Whether the CPU reports AMX-BF16 tile instructions (CPUID leaf 7, EDX bit 22).
pub fn cpu_has_amx_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // CPUID leaf 7 exists on every x86-64 CPU that can run this binary's AVX2 paths; on
        // older ones the bit reads 0.
        let leaf = std::arch::x86_64::__cpuid_count(7, 0);
        leaf.edx & (1 << 22) != 0
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Compiles `$body` (a function of the given arguments) for the baseline target, AVX2+FMA and
/// AVX-512, and defines `$name` that runs the widest version this CPU supports.
macro_rules! multiversion {
    ($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),*) => $body:ident) => {
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
                fn avx512($($arg: $ty),*) {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) {
                    $body($($arg),*)
                }
                if std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw")
                    && std::is_x86_feature_detected!("avx512dq")
                    && std::is_x86_feature_detected!("avx512vl")
                    && std::is_x86_feature_detected!("avx2")
                    && std::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has every feature the function was compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: as above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

const LOG2_E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;
/// 1.5 · 2²³: adding and subtracting it rounds to the nearest integer.
const ROUNDER: f32 = 12_582_912.0;

/// `e^x` to about 2 ulp, in arithmetic the compiler vectorises (no branches, no calls).
#[inline(always)]
pub fn fast_exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2_E + ROUNDER;
    let n = shifted - ROUNDER;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    // Taylor series to degree 7 on |r| ≤ ln2/2 (truncation error < 6e-9 relative)
    let mut p = 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    // the integer n sits in the low mantissa bits of `shifted`
    let n_int = shifted.to_bits().wrapping_sub(ROUNDER.to_bits()) as i32;
    p * f32::from_bits(((n_int + 127) as u32) << 23)
}

/// `erf(x)` to about 1e-7 absolute: Eigen's rational approximation on [-4, 4], ±1 outside.
#[inline(always)]
pub fn fast_erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 + -2.101_024e-6;
    p = p * x2 + -5.692_506_4e-5;
    p = p * x2 + -7.349_906_3e-4;
    p = p * x2 + -2.954_600_3e-3;
    p = p * x2 + -1.609_603_3e-2;
    let mut q = -1.456_607_2e-5;
    q = q * x2 + -2.133_740_6e-4;
    q = q * x2 + -1.682_827e-3;
    q = q * x2 + -7.373_329_2e-3;
    q = q * x2 + -1.426_473_9e-2;
    x * p / q
}

#[inline(always)]
fn quick_gelu_body(xs: &mut [f32]) {
    for x in xs {
        *x /= 1.0 + fast_exp(-1.702 * *x);
    }
}

#[inline(always)]
fn gelu_erf_body(xs: &mut [f32]) {
    for x in xs {
        *x = 0.5 * *x * (1.0 + fast_erf(*x * std::f32::consts::FRAC_1_SQRT_2));
    }
}

#[inline(always)]
fn gelu_tanh_body(xs: &mut [f32]) {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    for x in xs {
        let y = SQRT_2_OVER_PI * (*x + 0.044_715 * *x * *x * *x);
        // tanh(y) = 1 - 2 / (1 + e^{2y})
        let tanh = 1.0 - 2.0 / (1.0 + fast_exp(2.0 * y));
        *x = 0.5 * *x * (1.0 + tanh);
    }
}

#[inline(always)]
fn relu_body(xs: &mut [f32]) {
    for x in xs {
        *x = x.max(0.0);
    }
}

#[inline(always)]
fn add_rows_body(xs: &mut [f32], row: &[f32]) {
    for chunk in xs.chunks_exact_mut(row.len()) {
        for (x, b) in chunk.iter_mut().zip(row) {
            *x += b;
        }
    }
}

/// Sum of a slice with 16 independent accumulators (vectorisable; order differs from a serial sum).
#[inline(always)]
fn sum_lanes(xs: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let chunks = xs.chunks_exact(16);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (a, x) in acc.iter_mut().zip(chunk) {
            *a += x;
        }
    }
    acc.iter().sum::<f32>() + tail.iter().sum::<f32>()
}

/// Sum of squared deviations from `mean`, with 16 accumulators.
#[inline(always)]
fn squared_deviation_lanes(xs: &[f32], mean: f32) -> f32 {
    let mut acc = [0.0f32; 16];
    let chunks = xs.chunks_exact(16);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (a, x) in acc.iter_mut().zip(chunk) {
            let d = x - mean;
            *a += d * d;
        }
    }
    acc.iter().sum::<f32>() + tail.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>()
}

#[inline(always)]
fn layer_norm_body(src: &[f32], dst: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let width = gamma.len();
    for (row, out) in src.chunks_exact(width).zip(dst.chunks_exact_mut(width)) {
        let mean = sum_lanes(row) / width as f32;
        let var = squared_deviation_lanes(row, mean) / width as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for (((o, x), g), b) in out.iter_mut().zip(row).zip(gamma).zip(beta) {
            *o = (x - mean) * inv * g + b;
        }
    }
}

#[inline(always)]
fn softmax_rows_body(xs: &mut [f32], width: usize) {
    for row in xs.chunks_exact_mut(width) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        for x in row.iter_mut() {
            *x = fast_exp(*x - max);
        }
        let inv = 1.0 / sum_lanes(row);
        for x in row.iter_mut() {
            *x *= inv;
        }
    }
}

multiversion!(
    /// `x · sigmoid(1.702 x)` in place.
    quick_gelu(xs: &mut [f32]) => quick_gelu_body
);
multiversion!(
    /// Exact GELU, `x · Φ(x)`, in place.
    gelu_erf(xs: &mut [f32]) => gelu_erf_body
);
multiversion!(
    /// Tanh-approximated GELU in place.
    gelu_tanh(xs: &mut [f32]) => gelu_tanh_body
);
multiversion!(
    /// `max(x, 0)` in place.
    relu(xs: &mut [f32]) => relu_body
);
multiversion!(
    /// Adds `row` to every consecutive `row.len()` values of `xs` (a bias over a row-major matrix).
    add_rows(xs: &mut [f32], row: &[f32]) => add_rows_body
);
multiversion!(
    /// Layer norm of each `gamma.len()`-wide row of `src` into `dst` (biased variance, like PyTorch).
    layer_norm(src: &[f32], dst: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) => layer_norm_body
);
multiversion!(
    /// Softmax of each `width`-wide row in place.
    softmax_rows(xs: &mut [f32], width: usize) => softmax_rows_body
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_accurate_over_the_useful_range() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let exact = (x as f64).exp();
            let rel = ((fast_exp(x) as f64 - exact) / exact).abs();
            worst = worst.max(rel);
            x += 0.0137;
        }
        assert!(worst < 3e-7, "worst relative error {worst:e}");
        assert_eq!(fast_exp(0.0), 1.0);
        assert!(fast_exp(-200.0) < 1e-37 && fast_exp(-200.0) >= 0.0);
        assert!(fast_exp(200.0).is_finite());
    }

    #[test]
    fn fast_erf_matches_statrs() {
        let mut worst = 0.0f64;
        let mut x = -6.0f32;
        while x < 6.0 {
            let exact = statrs::function::erf::erf(x as f64);
            worst = worst.max((fast_erf(x) as f64 - exact).abs());
            x += 0.001;
        }
        assert!(worst < 5e-7, "worst absolute error {worst:e}");
    }

    fn reference_activations(x: f32) -> [f64; 3] {
        let x = x as f64;
        let quick = x / (1.0 + (-1.702 * x).exp());
        let erf = 0.5 * x * (1.0 + statrs::function::erf::erf(x / 2f64.sqrt()));
        let inner = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
        let tanh = 0.5 * x * (1.0 + inner.tanh());
        [quick, erf, tanh]
    }

    #[test]
    fn activations_match_f64_formulas_in_every_dispatch_width() {
        // 1003 values so that vector loops have a tail
        let xs: Vec<f32> = (0..1003).map(|i| (i as f32 - 501.0) * 0.02).collect();
        let mut quick = xs.clone();
        let mut erf = xs.clone();
        let mut tanh = xs.clone();
        let mut relu_out = xs.clone();
        quick_gelu(&mut quick);
        gelu_erf(&mut erf);
        gelu_tanh(&mut tanh);
        relu(&mut relu_out);
        for (i, &x) in xs.iter().enumerate() {
            let [q, e, t] = reference_activations(x);
            assert!((quick[i] as f64 - q).abs() < 2e-6, "quick_gelu({x})");
            assert!((erf[i] as f64 - e).abs() < 2e-6, "gelu({x})");
            assert!((tanh[i] as f64 - t).abs() < 2e-6, "gelu_tanh({x})");
            assert_eq!(relu_out[i], x.max(0.0));
        }
        // the baseline body agrees with the dispatched version
        let mut scalar = xs.clone();
        quick_gelu_body(&mut scalar);
        for (a, b) in scalar.iter().zip(&quick) {
            assert!((a - b).abs() <= 1e-6 * a.abs().max(1.0));
        }
    }

    #[test]
    fn layer_norm_and_softmax_match_direct_formulas() {
        let width = 37;
        let src: Vec<f32> = (0..width * 3)
            .map(|i| ((i * 7919) % 101) as f32 * 0.1 - 5.0)
            .collect();
        let gamma: Vec<f32> = (0..width).map(|i| 1.0 + i as f32 * 0.01).collect();
        let beta: Vec<f32> = (0..width).map(|i| i as f32 * -0.02).collect();
        let mut dst = vec![0.0; src.len()];
        layer_norm(&src, &mut dst, &gamma, &beta, 1e-5);
        for (row, out) in src.chunks(width).zip(dst.chunks(width)) {
            let mean = row.iter().map(|&x| x as f64).sum::<f64>() / width as f64;
            let var = row.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / width as f64;
            for i in 0..width {
                let want =
                    (row[i] as f64 - mean) / (var + 1e-5).sqrt() * gamma[i] as f64 + beta[i] as f64;
                assert!((out[i] as f64 - want).abs() < 1e-5, "{} vs {want}", out[i]);
            }
        }
        let mut rows = src.clone();
        softmax_rows(&mut rows, width);
        for (row, out) in src.chunks(width).zip(rows.chunks(width)) {
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
            let total: f64 = row.iter().map(|&x| (x as f64 - max).exp()).sum();
            for i in 0..width {
                let want = (row[i] as f64 - max).exp() / total;
                assert!((out[i] as f64 - want).abs() < 1e-6);
            }
        }
    }

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        out
    }

    #[test]
    fn matmul_overwrites_accumulates_scales_and_respects_strides() {
        let (m, k, n) = (7, 13, 5);
        let a: Vec<f32> = (0..m * k).map(|i| (i % 11) as f32 - 5.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 * 0.5 - 1.0).collect();
        let want = naive(&a, &b, m, k, n);
        for threads in [1, 2] {
            // written into columns 2..2+n of a 9-wide buffer
            let mut dst = vec![1.0; m * 9];
            let rhs = MatRef::new(&b, k, n);
            matmul(
                &mut dst[2..],
                9,
                MatRef::new(&a, m, k),
                rhs,
                1.0,
                false,
                threads,
            );
            for i in 0..m {
                for j in 0..n {
                    assert_eq!(dst[i * 9 + 2 + j], want[i * n + j]);
                }
                assert_eq!(dst[i * 9], 1.0);
                assert_eq!(dst[i * 9 + 7], 1.0);
            }
            let mut acc = vec![1.0; m * n];
            matmul(&mut acc, n, MatRef::new(&a, m, k), rhs, 0.5, true, threads);
            for (got, w) in acc.iter().zip(&want) {
                assert_eq!(*got, 1.0 + 0.5 * w);
            }
        }
        // A · Bᵀ through a transposed view of a row-major [n, k] buffer
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        let mut dst = vec![0.0; m * n];
        let rhs = MatRef::new(&bt, n, k).t();
        matmul(&mut dst, n, MatRef::new(&a, m, k), rhs, 1.0, false, 1);
        assert_eq!(dst, want);
    }

    #[test]
    #[should_panic(expected = "exceeds")]
    fn matmul_rejects_a_destination_that_is_too_small() {
        let a = vec![1.0; 4];
        let mut dst = vec![0.0; 3];
        matmul(
            &mut dst,
            2,
            MatRef::new(&a, 2, 2),
            MatRef::new(&a, 2, 2),
            1.0,
            false,
            1,
        );
    }
}
