//! bfloat16 matrix products for the fused image encoder (`--dtype bf16`), on CPUs with the
//! AVX512-BF16 dot-product instruction `vdpbf16ps` (AMD Zen 4 and later, Intel Cooper Lake and
//! Sapphire Rapids and later).
//!
//! Weights are rounded to bf16 once at load and packed in panels of 32 output columns, each panel
//! storing pairs of consecutive input rows side by side — the operand layout `vdpbf16ps` wants.
//! Activations are rounded to bf16 (round to nearest even) row by row before each product.
//! Products accumulate in f32, so the only error is the rounding of both operands to 8 bits of
//! mantissa.
//!
//! `unsafe` is confined to two functions compiled for AVX512-BF16: the row conversion and the
//! 8×32 micro-kernel. [`matmul`] checks every slice bound the kernel relies on before calling it
//! and refuses to run on a CPU without the instructions.

use rayon::prelude::*;

/// Rows of the micro-kernel's output tile.
const MR: usize = 8;
/// Columns of the micro-kernel's output tile (two 16-lane vectors) and of a weight panel.
const NR: usize = 32;
/// Rows per parallel task (a multiple of `MR`).
const MC: usize = 64;
/// Weight panels per column block of a task.
const PANELS_PER_BLOCK: usize = 8;
/// Input-row pairs per pass over the panels (keeps a panel slice in the L1 cache: 32 KiB).
const KC: usize = 256;

/// Whether this CPU can run [`matmul`].
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// An f32 rounded to the nearest bf16 (ties to even), as its 16 bits.
pub fn to_bf16(x: f32) -> u16 {
    if x.is_nan() {
        return 0x7fc0;
    }
    let bits = x.to_bits();
    ((bits + 0x7fff + ((bits >> 16) & 1)) >> 16) as u16
}

/// The f32 value of bf16 bits.
pub fn from_bf16(bits: u16) -> f32 {
    f32::from_bits((bits as u32) << 16)
}

/// A weight matrix `[k, n]` rounded to bf16 and packed for [`matmul`].
pub struct PackedBf16 {
    /// `[panel][pair][column in panel][2]`, zero-padded to whole panels and pairs.
    data: Vec<u16>,
    k: usize,
    n: usize,
    pairs: usize,
}

impl PackedBf16 {
    /// Rounds and packs a row-major `[k, n]` matrix.
    ///
    /// # Panics
    /// If `weight.len() != k * n`.
    pub fn pack(weight: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(weight.len(), k * n, "weight is not {k}×{n}");
        let pairs = k.div_ceil(2);
        let panels = n.div_ceil(NR);
        let mut data = vec![0u16; panels * pairs * NR * 2];
        data.par_chunks_mut(pairs * NR * 2)
            .enumerate()
            .for_each(|(panel, out)| {
                for p in 0..pairs {
                    for j in 0..NR.min(n - panel * NR) {
                        let col = panel * NR + j;
                        for h in 0..2 {
                            let row = 2 * p + h;
                            if row < k {
                                out[(p * NR + j) * 2 + h] = to_bf16(weight[row * n + col]);
                            }
                        }
                    }
                }
            });
        Self { data, k, n, pairs }
    }

    /// Input dimension.
    pub fn inputs(&self) -> usize {
        self.k
    }

    /// Output dimension.
    pub fn outputs(&self) -> usize {
        self.n
    }
}

/// `dst (+)= a · w` with `a` a row-major `[m, k]` f32 matrix (rounded to bf16 here) and `dst`
/// row-major `[m, n]`; `accumulate` adds to `dst`, otherwise it is overwritten. Runs on the rayon
/// pool.
///
/// # Panics
/// If the shapes disagree or the CPU lacks AVX512-BF16 (check [`available`] first).
pub fn matmul(dst: &mut [f32], a: &[f32], m: usize, w: &PackedBf16, accumulate: bool) {
    assert!(available(), "this CPU has no AVX512-BF16 instructions");
    assert_eq!(a.len(), m * w.k, "input is not {m}×{}", w.k);
    assert_eq!(dst.len(), m * w.n, "output is not {m}×{}", w.n);
    if m == 0 || w.n == 0 {
        return;
    }
    if w.k == 0 {
        if !accumulate {
            dst.fill(0.0);
        }
        return;
    }
    let row_len = 2 * w.pairs;
    // activations as bf16 rows, zero-padded to an even length
    let mut a16 = vec![0u16; m * row_len];
    a16.par_chunks_mut(row_len * MR)
        .zip(a.par_chunks(w.k * MR))
        .for_each(|(out, src)| {
            for (o, s) in out.chunks_mut(row_len).zip(src.chunks(w.k)) {
                convert_row(s, &mut o[..w.k]);
            }
        });
    let panels = w.n.div_ceil(NR);
    dst.par_chunks_mut(MC * w.n)
        .enumerate()
        .for_each(|(block, c)| {
            let rows = c.len() / w.n;
            let a_block = &a16[block * MC * row_len..(block * MC + rows) * row_len];
            for first_panel in (0..panels).step_by(PANELS_PER_BLOCK) {
                for k0 in (0..w.pairs).step_by(KC) {
                    let kc = KC.min(w.pairs - k0);
                    let overwrite = k0 == 0 && !accumulate;
                    for panel in first_panel..panels.min(first_panel + PANELS_PER_BLOCK) {
                        let cols = NR.min(w.n - panel * NR);
                        let b = &w.data[(panel * w.pairs + k0) * NR * 2..][..kc * NR * 2];
                        for g in (0..rows).step_by(MR) {
                            let tile_rows = MR.min(rows - g);
                            let c_tile = &mut c[g * w.n + panel * NR..];
                            tile(
                                a_block, row_len, g, tile_rows, k0, kc, b, c_tile, w.n, cols,
                                overwrite,
                            );
                        }
                    }
                }
            }
        });
}

/// One `tile_rows × cols` output tile over `kc` input pairs starting at pair `k0`; checks the
/// bounds the micro-kernel relies on, then calls it.
#[allow(clippy::too_many_arguments)]
fn tile(
    a: &[u16],
    row_len: usize,
    first_row: usize,
    tile_rows: usize,
    k0: usize,
    kc: usize,
    b: &[u16],
    c: &mut [f32],
    ldc: usize,
    cols: usize,
    overwrite: bool,
) {
    assert!((1..=MR).contains(&tile_rows) && (1..=NR).contains(&cols));
    assert!((first_row + tile_rows) * row_len <= a.len() && 2 * (k0 + kc) <= row_len);
    assert!(b.len() >= kc * NR * 2);
    assert!(c.len() >= (tile_rows - 1) * ldc + cols);
    // rows past the end of the tile repeat its first row; their results are not stored
    let rows: [usize; MR] =
        std::array::from_fn(|r| (first_row + if r < tile_rows { r } else { 0 }) * row_len + 2 * k0);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `matmul` checked that the CPU has AVX512F/BW/BF16. The asserts above guarantee
    // that for every r, the 2·kc values read from `a` at `rows[r]` lie inside `a`; that the kernel's
    // kc·64 reads from `b` lie inside `b`; and that the masked stores touch only
    // `c[r * ldc + j]` for r < tile_rows, j < cols, inside `c`.
    unsafe {
        kernel_8x32(a, &rows, kc, b, c, ldc, tile_rows, cols, overwrite);
    }
}

/// Rounds `src` to bf16 into `dst` (same length).
fn convert_row(src: &[f32], dst: &mut [u16]) {
    debug_assert_eq!(src.len(), dst.len());
    #[cfg(target_arch = "x86_64")]
    // SAFETY: only reached from `matmul`, which checked the CPU features.
    unsafe {
        convert_row_avx512(src, dst)
    }
    #[cfg(not(target_arch = "x86_64"))]
    for (d, s) in dst.iter_mut().zip(src) {
        *d = to_bf16(*s);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
fn convert_row_avx512(src: &[f32], dst: &mut [u16]) {
    use std::arch::x86_64::*;
    let n = src.len().min(dst.len());
    let whole = n / 32 * 32;
    for i in (0..whole).step_by(32) {
        // SAFETY: i + 32 <= whole <= len of both slices; unaligned loads and stores.
        unsafe {
            let lo = _mm512_loadu_ps(src.as_ptr().add(i));
            let hi = _mm512_loadu_ps(src.as_ptr().add(i + 16));
            // the second operand becomes the low half
            let packed = _mm512_cvtne2ps_pbh(hi, lo);
            _mm512_storeu_si512(
                dst.as_mut_ptr().add(i).cast(),
                std::mem::transmute::<__m512bh, __m512i>(packed),
            );
        }
    }
    for i in whole..n {
        dst[i] = to_bf16(src[i]);
    }
}

/// The 8×32 micro-kernel: for each of `kc` input pairs, broadcasts each row's pair of activations
/// and multiplies it into two 16-lane vectors of weight pairs with `vdpbf16ps`.
///
/// # Safety
/// The CPU has AVX512F/BW/BF16; `a[rows[r]..rows[r] + 2 kc]` is in bounds for every r;
/// `b.len() >= 64 kc`; `c[r * ldc + j]` is in bounds for r < `tile_rows`, j < `cols` ≤ 32.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel_8x32(
    a: &[u16],
    rows: &[usize; MR],
    kc: usize,
    b: &[u16],
    c: &mut [f32],
    ldc: usize,
    tile_rows: usize,
    cols: usize,
    overwrite: bool,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    let a_rows: [*const u32; MR] = std::array::from_fn(|r| {
        // SAFETY: rows[r] is in bounds (caller contract).
        unsafe { a.as_ptr().add(rows[r]).cast::<u32>() }
    });
    let bp = b.as_ptr();
    for p in 0..kc {
        // SAFETY: p < kc, so the 64 values at p·64 are inside b; each a row has 2·kc values.
        unsafe {
            let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp.add(p * 64).cast()));
            let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp.add(p * 64 + 32).cast()));
            for r in 0..MR {
                let pair = a_rows[r].add(p).read_unaligned();
                let av: __m512bh = std::mem::transmute(_mm512_set1_epi32(pair as i32));
                acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);
                acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);
            }
        }
    }
    let mask = |lanes: usize| -> __mmask16 {
        if lanes >= 16 {
            0xffff
        } else {
            ((1u32 << lanes) - 1) as __mmask16
        }
    };
    let masks = [mask(cols), mask(cols.saturating_sub(16))];
    for (r, row_acc) in acc.iter().enumerate().take(tile_rows) {
        for (v, &m) in masks.iter().enumerate() {
            if m == 0 {
                continue;
            }
            // SAFETY: the masked lanes are columns v·16 + j < cols of row r < tile_rows.
            unsafe {
                let ptr = c.as_mut_ptr().add(r * ldc + v * 16);
                let value = if overwrite {
                    row_acc[v]
                } else {
                    _mm512_add_ps(row_acc[v], _mm512_maskz_loadu_ps(m, ptr))
                };
                _mm512_mask_storeu_ps(ptr, m, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_to_nearest_even() {
        assert_eq!(to_bf16(1.0), 0x3f80);
        assert_eq!(from_bf16(to_bf16(-2.5)), -2.5);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1.0)
        assert_eq!(to_bf16(1.0 + 1.0 / 256.0), 0x3f80);
        assert_eq!(to_bf16(1.0 + 3.0 / 256.0), 0x3f82);
        assert_eq!(to_bf16(f32::NAN), 0x7fc0);
        let x = 0.123_456_79f32;
        assert!((from_bf16(to_bf16(x)) - x).abs() <= x * 2f32.powi(-8));
    }

    fn rounded(x: f32) -> f64 {
        from_bf16(to_bf16(x)) as f64
    }

    #[test]
    fn products_equal_f64_products_of_rounded_operands() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX512-BF16");
            return;
        }
        // odd k, a partial last panel, a partial last row tile, several row blocks, two k blocks
        for (m, k, n) in [(1, 1, 1), (13, 37, 45), (70, 515, 33), (9, 64, 96)] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 37) % 23) as f32 * 0.173 - 1.9)
                .collect();
            let w: Vec<f32> = (0..k * n)
                .map(|i| ((i * 11) % 29) as f32 * 0.051 - 0.7)
                .collect();
            let packed = PackedBf16::pack(&w, k, n);
            assert_eq!((packed.inputs(), packed.outputs()), (k, n));
            let mut want = vec![0f64; m * n];
            for i in 0..m {
                for j in 0..n {
                    want[i * n + j] = (0..k)
                        .map(|p| rounded(a[i * k + p]) * rounded(w[p * n + j]))
                        .sum();
                }
            }
            let mut got = vec![f32::NAN; m * n];
            matmul(&mut got, &a, m, &packed, false);
            let scale = want.iter().fold(1f64, |s, v| s.max(v.abs()));
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (*g as f64 - w).abs() <= 1e-5 * scale,
                    "{m}×{k}×{n}: {g} vs {w}"
                );
            }
            let mut acc = vec![2.0f32; m * n];
            matmul(&mut acc, &a, m, &packed, true);
            for (g, w) in acc.iter().zip(&want) {
                assert!((*g as f64 - (w + 2.0)).abs() <= 1e-5 * scale.max(2.0));
            }
        }
    }

    #[test]
    fn row_conversion_matches_scalar_rounding() {
        if !available() {
            return;
        }
        let src: Vec<f32> = (0..77).map(|i| (i as f32 - 30.0) * 0.3377 + 1e-3).collect();
        let mut dst = vec![0u16; src.len()];
        convert_row(&src, &mut dst);
        for (s, d) in src.iter().zip(&dst) {
            assert_eq!(*d, to_bf16(*s), "{s}");
        }
    }
}
